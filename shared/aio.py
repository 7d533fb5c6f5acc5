"""Small asyncio helpers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


# ASYNC109: an outer asyncio.timeout() cannot stand in for ``timeout``: its own
# cancel could be swallowed the same way, and the loop must keep re-cancelling.
async def cancel_and_wait(task: asyncio.Task[Any], timeout: float = 5.0) -> bool:  # noqa: ASYNC109
    """Cancel ``task`` and wait until it has really ended; True if it did.

    redis-py (8.x) can swallow a cancellation that lands while a reply is
    being read, and the task then carries on (a read loop would run on
    forever). Cancelling again until the task is done gets it out.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done() and loop.time() < deadline:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait({task}, timeout=0.1)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as lost
    return task.done()
