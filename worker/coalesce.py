"""Token coalescing: many small pieces of text, few ``stream_chunk`` events.

A model can emit hundreds of tokens a second; one stream entry per token
would spend Redis commands, gateway wake-ups and socket frames on a few
bytes each. The coalescer sends the first piece at once (time to first token
matters most), then at most one chunk per ``interval``, or sooner once the
buffer holds ``max_chars``. At most one flush is in flight, so chunks stay in
order. What is still buffered at the end is not flushed: ``stream_end``
carries the whole reply (so a reply generated in one go, before the first
flush could run, is sent as ``stream_end`` alone).

A piece that arrives inside the interval costs a list append and nothing
else: one loop timer per chunk, never a task or a timer per token. That
matters most for the local model, whose CPU-bound threads lose more than
the worker spends whenever the worker wakes on every token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from shared.keys import CHUNK_INTERVAL_S, CHUNK_MAX_CHARS

Flush = Callable[[str], Awaitable[None]]


class Coalescer:
    def __init__(
        self,
        flush: Flush,
        *,
        interval: float = CHUNK_INTERVAL_S,
        max_chars: int = CHUNK_MAX_CHARS,
    ) -> None:
        self._flush = flush
        self._interval = interval
        self._max_chars = max_chars
        self._loop = asyncio.get_running_loop()
        self._buffer: list[str] = []
        self._size = 0
        self._last = float("-inf")
        #: The pending start of the next flush (soon, or at the interval's end).
        self._timer: asyncio.Handle | None = None
        self._in_flight: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._closing = False
        self.chunks_sent = 0

    def add(self, text: str) -> None:
        if not text or self._closing:
            return
        self._buffer.append(text)
        self._size += len(text)
        self._schedule()

    def _schedule(self) -> None:
        """Make sure a flush will start, unless one is in flight (its end
        schedules the next). A flush that is due starts on the loop's next
        turn, not inside ``add``: pieces added in the same turn join it, and
        a ``stop`` right after the last piece still cancels it."""
        if self._closing or self._in_flight is not None or not self._buffer:
            return
        due = self._last + self._interval
        if self._size >= self._max_chars or self._loop.time() >= due:
            if isinstance(self._timer, asyncio.TimerHandle):  # set for later: go now
                self._timer.cancel()
                self._timer = None
            if self._timer is None:
                self._timer = self._loop.call_soon(self._on_timer)
        elif self._timer is None:
            self._timer = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        # Still true: stop() cancels the timer, none is set while a flush is
        # in flight, and only a flush empties the buffer.
        self._timer = None
        self._start()

    def _start(self) -> None:
        text = "".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        self._last = self._loop.time()
        self.chunks_sent += 1
        self._in_flight = asyncio.create_task(self._send(text), name="coalescer-flush")

    async def _send(self, text: str) -> None:
        try:
            await self._flush(text)
        except BaseException as exc:  # kept for close(); no further flush starts
            self._error = exc
            self._closing = True
        finally:
            self._in_flight = None
        self._schedule()

    def stop(self) -> None:
        """The producer is done: no new flush starts (``stream_end`` carries
        what is buffered). Called at once when the last piece is in, so a
        flush that has not started does not repeat the whole reply."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        """Stop flushing. A flush in flight is awaited (never cancelled half-way,
        so nothing overtakes it), and its failure raised; text still waiting
        for its interval is dropped."""
        self.stop()
        task = self._in_flight
        if task is not None:
            await asyncio.shield(task)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
