"""The consumer-group loop both kinds of worker run: turn workers over the
prompt streams, ingestion workers over the ingestion stream (``lanes.py``).

It reads with XREADGROUP (``>``) as many entries as there are free slots,
gives the next free slot to a takeover the claim loop owes, rides out Redis
outages with backoff, recreates a group that went missing (Redis restarted
empty), and stops at once when asked, abandoning a blocked read. On the way
out, ``drain`` lets work in flight finish up to a timeout and hands the rest
back to the other workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import KeyT, StreamIdT

from shared.aio import cancel_and_wait
from shared.keys import WORKER_BLOCK_MS, Keys
from shared.streams import StreamResponse
from worker import upkeep
from worker.claims import Claims
from worker.lanes import Lanes
from worker.running import Entry, RunningTurns, StartEntry

log = logging.getLogger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(eq=False)
class StreamConsumer:
    """The read loop of one consumer over its pools' streams."""

    redis: Redis
    keys: Keys
    lanes: Lanes
    consumer: str
    pools: list[str]
    running: RunningTurns
    claims: Claims
    #: Set to stop: a blocked read is abandoned at once.
    stopping: asyncio.Event

    async def ensure_groups(self) -> None:
        for pool in self.pools:
            try:
                # From 0: entries queued before any worker existed are served too.
                await self.redis.xgroup_create(
                    self.lanes.stream(pool), self.lanes.group, id="0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read_loop(
        self,
        start: StartEntry,
        *,
        done: Callable[[], bool] = lambda: False,
        idle: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Read and start entries until stopped, or ``done()``, or (``idle``,
        for bounded runs) a read found nothing, nothing runs, and ``idle()``
        says there is nothing left to do."""
        streams: dict[KeyT, StreamIdT] = {self.lanes.stream(pool): ">" for pool in self.pools}
        pool_of = {self.lanes.stream(pool): pool for pool in self.pools}
        backoff = 0.1
        while not self.stopping.is_set() and not done():
            free = self.running.free
            if free <= 0:
                await self.running.wait_for_slot()
                continue
            if self.claims.owed:
                self.claims.owed = False
                await self.claims.claim_all()
                continue
            read = asyncio.ensure_future(
                self.redis.xreadgroup(
                    self.lanes.group, self.consumer, streams, count=free, block=WORKER_BLOCK_MS
                )
            )
            stopping = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait({read, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not read.done():
                # Shutting down: abandon the blocked read (its connection is
                # dropped); anything it was handed is handed back in drain().
                await cancel_and_wait(read)
                break
            try:
                # redis-py types the reply loosely, for every kind of client.
                response = cast(StreamResponse, read.result())
                backoff = 0.1
            except ResponseError as exc:
                # UNBLOCKED: the stream was deleted while this read waited on it.
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                log.warning("consumer group missing (Redis restarted empty?); recreating")
                await self.ensure_groups()
                continue
            except REDIS_DOWN as exc:
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for stream, entries in response or []:
                for entry_id, fields in entries:
                    start(Entry(pool_of[stream], entry_id, fields))
            if idle is not None and not response and not self.running and await idle():
                break

    async def drain(self, grace_seconds: float, what: str) -> None:
        """Let work in flight finish, up to ``grace_seconds``; hand back the rest."""
        if self.running:
            tasks = [r.task for r in self.running]
            log.info("draining %d %s for up to %.0fs", len(tasks), what, grace_seconds)
            await asyncio.wait(tasks, timeout=grace_seconds)
        leftovers = list(self.running)
        await asyncio.gather(*(cancel_and_wait(r.task) for r in leftovers))
        with contextlib.suppress(*REDIS_DOWN):
            handed = await upkeep.hand_back(
                self.redis, self.keys, self.consumer, self.pools, self.lanes
            )
            if handed:
                log.info("handed back %d %s to the other workers", handed, what)
