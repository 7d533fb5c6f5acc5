"""Hugging Face Inference Providers, or any OpenAI-compatible server, as a backend.

One ``huggingface_hub.AsyncInferenceClient`` per turn, closed when the turn
ends however it ends. In huggingface_hub 2.x the streaming HTTP response is
entered into the client's exit stack and released only by ``client.close()``:
a client shared across turns would keep every stopped turn's connection open,
and the inference server would go on generating for nobody. Creating the
client is cheap (no connection until the request), so nothing is kept
between turns.

Library and transport exceptions are mapped at this boundary to the
worker's own hierarchy (``worker.errors``, by ``upstream_errors.py``), so
the turn runner decides on retries without knowing about HTTP. Messages
name the status and the server's own words, never the token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

from huggingface_hub import (
    AsyncInferenceClient,
    ChatCompletionInputMessage,
    ChatCompletionInputStreamOptions,
    ChatCompletionStreamOutput,
)

from shared.conversation import FinishReason, Usage
from shared.models_file import HFModel
from worker.backends.base import Delta, GenerationRequest, ToolCallPiece
from worker.backends.upstream_errors import UpstreamErrors

#: OpenAI's finish reasons (and TGI's older ones) as tidechat's. Anything
#: else (a stop sequence, a content filter, a tool call) ended the reply
#: normally as far as a chat user is concerned.
_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


class HFBackend:
    """Streams chat completions from a Hub model id (through Inference
    Providers, ``spec.provider`` or the router's automatic choice) or from
    ``spec.base_url`` (TGI, vLLM, llama.cpp server, any OpenAI-compatible
    endpoint).

    ``timeout`` bounds connecting and waiting for the response to start (a
    long prompt's prefill can take a while on a busy server); ``idle_timeout``
    bounds the silence between two chunks once it has started, so a hung
    upstream fails the turn instead of holding it forever.

    Stop a turn by cancelling the task that iterates ``stream()`` or by
    closing the iterator (``contextlib.aclosing``): either closes the HTTP
    connection at once, which is how the inference server learns to stop.
    """

    def __init__(
        self,
        spec: HFModel,
        token: str | None,
        *,
        timeout: float = 60.0,
        idle_timeout: float = 30.0,
    ) -> None:
        self.spec = spec
        self._token = token
        self._errors = UpstreamErrors(token)
        self.timeout = timeout
        self.idle_timeout = idle_timeout

    def __repr__(self) -> str:
        # Spelled out so that no default repr ever shows the token.
        return f"HFBackend(model={self.spec.id!r})"

    #: Tools (issue 15): OpenAI-style ``tools`` go to the server as they are.
    supports_tools = True

    def count_tokens(self, text: str) -> int | None:
        # The tokenizer lives on the server; the caller estimates.
        return None

    async def load(self) -> None:
        """Nothing to load: the model runs upstream."""

    async def aclose(self) -> None:
        # Every client belongs to one turn and is closed with it.
        return None

    def _client(self) -> AsyncInferenceClient:
        if self.spec.base_url:
            # Without a token of its own the library would fall back to the
            # machine's Hugging Face token (HF_TOKEN, the login file) and send
            # it to whatever server base_url names; a None header is dropped.
            headers = None if self._token else cast(dict[str, str], {"authorization": None})
            return AsyncInferenceClient(
                base_url=self.spec.base_url,
                token=self._token,
                timeout=self._transport_timeout,
                headers=headers,
            )
        return AsyncInferenceClient(
            provider=cast(Any, self.spec.provider),
            token=self._token,
            timeout=self._transport_timeout,
        )

    @property
    def _transport_timeout(self) -> float:
        # httpx2's per-operation limit, only a backstop: the asyncio timeouts
        # in stream() are the ones meant to fire, with the clearer message.
        return max(self.timeout, self.idle_timeout) + 1.0

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        client = self._client()
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    chunks = await client.chat_completion(
                        _messages(request),
                        model=self.spec.model,
                        stream=True,
                        max_tokens=request.max_tokens,
                        temperature=request.temperature,
                        top_p=request.top_p,
                        stop=request.stop or None,
                        stream_options=ChatCompletionInputStreamOptions(include_usage=True),
                        tools=cast(Any, request.tools),  # issue 15: tool definitions
                    )
            except Exception as exc:
                timeout = f"no response from upstream within {self.timeout:g}s"
                await self._errors.reraise(exc, timeout, streaming=False)

            finish: str | None = None
            usage: Usage | None = None
            iterator = aiter(chunks)
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    idle = f"upstream sent nothing for {self.idle_timeout:g}s"
                    await self._errors.reraise(exc, idle, streaming=True)
                usage = _usage(chunk) or usage
                for choice in chunk.choices or []:
                    if choice.index not in (0, None):
                        continue  # n=1 is asked for; ignore anything else
                    finish = choice.finish_reason or finish
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        yield Delta(text=text)
                    pieces = _tool_pieces(choice.delta)  # issue 15: streamed tool calls
                    if pieces:
                        yield Delta(tool_calls=pieces)
            yield Delta(finish_reason=_FINISH_REASONS.get(finish or "stop", "stop"), usage=usage)
        finally:
            # Releases the streamed response and its connection (see the
            # module docstring); runs on cancellation and on aclose() too.
            await client.close()  # type: ignore[no-untyped-call]


def _messages(request: GenerationRequest) -> list[dict[Any, Any] | ChatCompletionInputMessage]:
    """The messages as sent; the question's images (vision models) as
    OpenAI-compatible image parts after its text."""
    out: list[dict[Any, Any] | ChatCompletionInputMessage] = [
        dict(message) for message in request.messages
    ]
    if request.images and out and isinstance(out[-1], dict) and out[-1]["role"] == "user":
        parts: list[dict[str, Any]] = [{"type": "text", "text": out[-1]["content"]}]
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in request.images]
        out[-1] = {"role": "user", "content": parts}
    return out


def _tool_pieces(delta: Any) -> list[ToolCallPiece]:
    """The tool-call pieces of one streamed delta (issue 15)."""
    calls = getattr(delta, "tool_calls", None) if delta is not None else None
    pieces: list[ToolCallPiece] = []
    for call in calls or []:
        function = getattr(call, "function", None)
        pieces.append(
            ToolCallPiece(
                index=int(getattr(call, "index", 0) or 0),
                id=getattr(call, "id", None) or None,
                name=getattr(function, "name", None) or None,
                arguments=getattr(function, "arguments", None) or "",
            )
        )
    return pieces


def _usage(chunk: ChatCompletionStreamOutput) -> Usage | None:
    usage = chunk.usage
    if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return None
    return Usage(
        prompt_tokens=int(usage.prompt_tokens or 0),
        completion_tokens=int(usage.completion_tokens or 0),
    )
