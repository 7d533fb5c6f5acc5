"""What runs in the local model's generation thread: one reply on a llama
context, reported piece by piece through a callback.

``LlamaCppBackend.stream`` (``worker/backends/llamacpp.py``) starts the
thread and turns what it reports into deltas on the event loop; this module
knows nothing of asyncio.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.conversation import FinishReason, Usage
from shared.models_file import LlamaCppModel
from worker.backends.base import GenerationRequest
from worker.backends.llama_templates import PromptFormat
from worker.errors import BackendError, BackendUnavailable, TurnError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Finished:
    finish_reason: FinishReason
    usage: Usage


@dataclass(slots=True)
class Failed:
    error: TurnError


#: What the thread reports: a piece of text, then how the reply ended.
ThreadItem = str | Finished | Failed


@dataclass(frozen=True, slots=True)
class ThreadJob:
    """One reply for the generation thread: the model, how its prompts are
    rendered, what to generate, and how it is stopped and reported."""

    llm: Any
    prompt_format: PromptFormat
    spec: LlamaCppModel
    messages: list[dict[str, str]]
    request: GenerationRequest
    cancel: threading.Event
    emit: Callable[[ThreadItem], None]


def generate(job: ThreadJob) -> None:
    """Generate one reply on ``job.llm``; runs in the generation thread and
    reports each piece of text, then a ``Finished`` or a ``Failed``, through
    ``job.emit``. Returns early, reporting nothing more, once ``job.cancel``
    is set."""
    try:
        _generate(job)
    except TurnError as exc:
        job.emit(Failed(exc))
    except Exception as exc:
        if job.cancel.is_set():
            return  # the abort callback interrupted llama_decode on purpose
        log.exception("local model %s failed", job.spec.id)
        error = BackendUnavailable(f"the local model failed: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        job.emit(Failed(error))


def _generate(job: ThreadJob) -> None:
    llm, spec, request, cancel, emit = job.llm, job.spec, job.request, job.cancel, job.emit
    n_ctx = int(llm.n_ctx())
    # llama.cpp rounds the context up (to a multiple of 256): the models
    # file's window is the one the budget planned for.
    room = min(n_ctx, spec.context_window) - request.max_tokens
    rendered = job.prompt_format.render(llm, job.messages, room)
    prompt_tokens = len(rendered.tokens)
    if prompt_tokens >= n_ctx:
        raise BackendError(
            f"the prompt ({prompt_tokens} tokens) does not fit the context window of "
            f"model {spec.id} ({n_ctx} tokens)"
        )
    stop = list(dict.fromkeys(s for s in [*spec.stop, *request.stop, *rendered.stop] if s))
    options: dict[str, Any] = {}
    if request.top_p is not None:
        options["top_p"] = request.top_p
    finish: FinishReason = "stop"
    leading = rendered.lstrip
    with _AbortOn(llm, cancel) as abort:
        # What llama-cpp-python's chat handler does after rendering, for any format.
        chunks = llm.create_completion(
            prompt=rendered.tokens,
            stream=True,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=stop,
            stopping_criteria=rendered.stopping_criteria,
            repeat_penalty=spec.repeat_penalty,
            # llama-cpp-python derives the same seed for every call:
            # without a fresh one, "regenerate" would repeat the reply.
            seed=request.seed if request.seed is not None else random.getrandbits(31),
            **options,
        )
        try:
            for chunk in chunks:
                # The prompt is processed: from here a check between tokens
                # is enough, and a callback per graph node would slow them.
                abort.disarm()
                if cancel.is_set():
                    return
                choice = chunk["choices"][0]
                text = choice.get("text")
                if text and leading:
                    text = text.lstrip()
                    leading = not text
                if text:
                    emit(text)
                if choice.get("finish_reason") == "length":
                    finish = "length"
        finally:
            chunks.close()
    if cancel.is_set():
        return
    # llama.cpp evaluates every sampled token but the last before sampling
    # the next, so the context grew by the reply's tokens, less the last
    # one unless the reply was cut at max_tokens (an end-of-turn token, or
    # the token that completed a stop sequence, is not counted). Counting
    # the text again would disagree with what the model produced.
    completion = int(llm.n_tokens) - prompt_tokens + (1 if finish == "length" else 0)
    emit(Finished(finish, Usage(prompt_tokens=prompt_tokens, completion_tokens=completion)))


class _AbortOn:
    """While armed, llama_decode stops when ``cancel`` is set (it then fails
    with "llama_decode returned 2", which the caller treats as a stop)."""

    def __init__(self, llm: Any, cancel: threading.Event) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._ctx = llm.ctx
        self._armed = False

        def should_abort(_data: Any) -> bool:
            return cancel.is_set()

        # Kept referenced: llama.cpp holds only the raw function pointer.
        self._callback = llama_cpp.ggml_abort_callback(should_abort)

    def __enter__(self) -> _AbortOn:
        self._lib.llama_set_abort_callback(self._ctx, self._callback, None)
        self._armed = True
        return self

    def disarm(self) -> None:
        if self._armed:
            self._lib.llama_set_abort_callback(self._ctx, self._lib.ggml_abort_callback(), None)
            self._armed = False

    def __exit__(self, *exc: object) -> None:
        self.disarm()
