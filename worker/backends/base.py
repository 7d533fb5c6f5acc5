"""The one narrow interface every inference backend implements.

A backend turns a chat (OpenAI-style role/content messages, system first)
into an async iterator of ``Delta`` pieces of text, the last of which may
carry the finish reason and the backend's own token usage. Closing the
iterator (``aclose``, or cancelling the task that iterates it) must end the
upstream work: close the HTTP connection, interrupt the local model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.conversation import FinishReason, Usage
from shared.models_file import ModelSpec
from worker.context import Framing


@dataclass(slots=True)
class GenerationRequest:
    #: OpenAI-style chat messages; with tools, also assistant messages with
    #: ``tool_calls`` and ``tool`` messages (shared/tools.py step_messages).
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float = 0.7
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    #: Sampling seed, for reproducible replies (benchmarks, tests); None: a
    #: fresh one each time, so "regenerate" gives a new reply. Backends that
    #: cannot seed ignore it.
    seed: int | None = None
    #: Images for the last user message, as data URLs (vision models only).
    images: list[str] = field(default_factory=list)
    #: Tools (issue 15): OpenAI-style function definitions the model may
    #: call; only backends with ``supports_tools`` get them.
    tools: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class ToolCallPiece:
    """A piece of a streamed tool call: the first piece of call ``index``
    has its ``id`` and ``name``, the rest append to ``arguments``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class Delta:
    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCallPiece] | None = None


class Backend(Protocol):
    @property
    def spec(self) -> ModelSpec:
        """The models-file entry this backend serves."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Generate a reply; each item is the next piece of text."""
        ...

    def count_tokens(self, text: str) -> int | None:
        """Tokens in ``text`` by the model's own tokenizer, or None if the
        backend has none locally (the caller then estimates)."""
        ...

    async def load(self) -> None:
        """Get ready to generate (a local model reads its weights); the worker
        calls it at start and before each turn, so it must be cheap once done."""
        ...

    async def aclose(self) -> None:
        """Release what the backend holds (clients, loaded weights)."""
        ...


def prompt_framing(backend: Backend) -> Framing | None:
    """What a backend's prompt format adds around the messages (a base
    model's dialogue preamble and examples), for the context budget. Only a
    backend that renders prompts itself (llamacpp) has any: a chat API's
    template is covered by the per-message overhead."""
    framing = getattr(backend, "prompt_framing", None)
    return framing() if callable(framing) else None
