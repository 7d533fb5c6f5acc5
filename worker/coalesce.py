"""Token coalescing: many small pieces of text, few ``stream_chunk`` events.

A model can emit hundreds of tokens a second; one stream entry per token
would spend Redis commands, gateway wake-ups and socket frames on a few
bytes each. The coalescer sends the first piece at once (time to first token
matters most), then at most one chunk per ``interval``, or sooner once the
buffer holds ``max_chars``. At most one flush is in flight, so chunks stay in
order. What is still buffered at the end is not flushed: ``stream_end``
carries the whole reply (so a reply generated in one go, before the first
flush could run, is sent as ``stream_end`` alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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
        self._buffer: list[str] = []
        self._size = 0
        self._wake = asyncio.Event()
        self._big = asyncio.Event()
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.chunks_sent = 0

    def add(self, text: str) -> None:
        if not text:
            return
        self._buffer.append(text)
        self._size += len(text)
        if self._task is None and not self._closing:
            self._task = asyncio.create_task(self._run(), name="coalescer")
        self._wake.set()
        if self._size >= self._max_chars:
            self._big.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self._closing:
                return
            self._wake.clear()
            wait = self._last + self._interval - time.monotonic()
            if wait > 0 and self._size < self._max_chars:
                self._big.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._big.wait(), wait)
                if self._closing:
                    return
            if not self._buffer:
                continue
            text = "".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            self._last = time.monotonic()
            self.chunks_sent += 1
            await self._flush(text)

    def stop(self) -> None:
        """The producer is done: no new flush starts (``stream_end`` carries
        what is buffered). Called at once when the last piece is in, so a
        flush task that has not run yet does not repeat the whole reply."""
        self._closing = True
        self._wake.set()
        self._big.set()

    async def close(self) -> None:
        """Stop flushing. A flush in flight is awaited (never cancelled half-way,
        so nothing overtakes it); text still waiting for its interval is dropped."""
        self.stop()
        task, self._task = self._task, None
        if task is not None:
            await task
