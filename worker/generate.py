"""One generation attempt loop: stream from a backend with coalescing, stop,
timeouts and in-turn retries of retryable backend failures.

Kept apart from the turn bookkeeping (``worker/turn.py``) so the rules of
"what happens while tokens flow" can be read and tested on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from shared.conversation import FinishReason, Usage
from worker.backends.base import Backend, Delta, GenerationRequest, ToolCallPiece
from worker.coalesce import Coalescer
from worker.errors import BackendTimeout, TurnError

log = logging.getLogger(__name__)

#: The idle deadline is pushed forward at most this often while tokens flow
#: (rescheduling a timer on every token is wasted work at 1,000 tokens/s).
_IDLE_RESCHEDULE_S = 0.25


class TurnTimeLimit(Exception):
    """The whole reply took longer than the per-turn limit."""


@dataclass(slots=True)
class Outcome:
    text: str
    finish_reason: FinishReason
    usage: Usage | None = None
    error: TurnError | None = None
    #: Whether the text was already streamed to the client in chunks.
    streamed: bool = False
    #: Tools (issue 15): the streamed pieces of the tool calls the model
    #: asked for (assembled by worker/tools/calls.py).
    tool_calls: list[ToolCallPiece] = field(default_factory=list)


@dataclass(slots=True)
class RetryPolicy:
    retries: int = 3
    base: float = 0.5
    cap: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential backoff, never shorter than Retry-After."""
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.cap))
        return backoff


@dataclass(slots=True)
class _Attempt:
    parts: list[str] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCallPiece] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)


async def _consume(
    stream: AsyncIterator[Delta],
    state: _Attempt,
    coalescer: Coalescer,
    *,
    idle_timeout: float,
    deadline: float,
) -> None:
    """Read the backend's stream into ``state``, enforcing both timeouts."""
    loop = asyncio.get_running_loop()
    last_push = loop.time()
    try:
        async with asyncio.timeout(min(last_push + idle_timeout, deadline)) as timer:
            async for delta in stream:
                if delta.text:
                    state.parts.append(delta.text)
                    coalescer.add(delta.text)
                if delta.finish_reason is not None:
                    state.finish_reason = delta.finish_reason
                if delta.usage is not None:
                    state.usage = delta.usage
                if delta.tool_calls:
                    state.tool_calls.extend(delta.tool_calls)
                now = loop.time()
                if now - last_push > _IDLE_RESCHEDULE_S:
                    last_push = now
                    timer.reschedule(min(now + idle_timeout, deadline))
    except TimeoutError as exc:
        if loop.time() >= deadline - 0.01:
            raise TurnTimeLimit() from exc
        raise BackendTimeout(f"the model sent nothing for {idle_timeout:g} s") from exc
    finally:
        coalescer.stop()
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


async def generate(
    backend: Backend,
    request: GenerationRequest,
    *,
    send_chunk: Callable[[str], Awaitable[None]],
    send_restart: Callable[[str], Awaitable[None]],
    stop: asyncio.Event,
    policy: RetryPolicy,
    idle_timeout: float,
    total_timeout: float,
) -> Outcome:
    """Generate one reply, honouring stop at any moment.

    On stop the task iterating the backend is cancelled, which closes the
    upstream request (HTTP connection, local model thread), and what was
    generated so far is returned with ``finish_reason="stopped"``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_timeout
    attempt = 0
    while True:
        if stop.is_set():
            return Outcome("", "stopped", None)
        state = _Attempt()
        coalescer = Coalescer(send_chunk)
        gen = asyncio.create_task(
            _consume(
                backend.stream(request),
                state,
                coalescer,
                idle_timeout=idle_timeout,
                deadline=deadline,
            )
        )
        stopper = asyncio.create_task(stop.wait())
        stopped = False
        try:
            await asyncio.wait({gen, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopped = not gen.done()
        finally:
            stopper.cancel()
            if not gen.done():
                gen.cancel()
            # Whatever way it ends (a backend may swallow the cancel), wait for
            # the upstream to be closed before the reply is stored.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await gen
            await coalescer.close()
        streamed = coalescer.chunks_sent > 0
        if stopped:
            return Outcome(state.text, "stopped", state.usage, streamed=streamed)
        exc = gen.exception()
        if exc is None:
            return Outcome(
                state.text,
                state.finish_reason or "stop",
                state.usage,
                streamed=streamed,
                tool_calls=state.tool_calls,
            )
        if isinstance(exc, TurnTimeLimit):
            return Outcome(state.text, "length", state.usage, streamed=streamed)
        if not isinstance(exc, TurnError):
            log.error("backend %s failed", backend.spec.id, exc_info=exc)
            error = TurnError(f"the model failed unexpectedly ({type(exc).__name__})")
            return Outcome(state.text, "error", state.usage, error=error, streamed=streamed)
        if not exc.retryable or attempt >= policy.retries:
            return Outcome(state.text, "error", state.usage, error=exc, streamed=streamed)
        attempt += 1
        delay = policy.delay(attempt, exc.retry_after)
        log.info("retrying %s in %.2fs after: %s", backend.spec.id, delay, exc.message)
        if streamed:
            await send_restart(f"{exc.message}; retrying (attempt {attempt + 1})")
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            continue
        return Outcome("", "stopped", None, streamed=False)
