"""What every stream-reading worker process does around its own work: the
turn workers (``worker/worker.py``) and the ingestion workers
(``worker/documents/pool.py``) are both a ``ConsumerProcess``.

It owns the lifecycle: ``request_stop`` (and SIGTERM/SIGINT when asked),
the background duties every pool needs (the heartbeat, the claim loop,
trimming) beside the ones a kind of worker adds, the read loop
(``worker/consumer.py``), draining on the way out, cancelling the duties
and removing this worker's heartbeat entry. A subclass says only how an
entry becomes a task (``begin``), what it adds (``duties``, ``prepare``,
``close``) and when a bounded run is over (``read``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from shared.aio import cancel_and_wait
from shared.keys import HEARTBEAT_S, Keys
from worker import upkeep
from worker.claims import Claims
from worker.config import WorkerSettings
from worker.consumer import REDIS_DOWN, StreamConsumer
from worker.lanes import Lanes
from worker.running import Entry, Running, RunningTurns, last_tries

log = logging.getLogger(__name__)


class ConsumerProcess(ABC):
    #: What it is and what its entries are, for the logs.
    kind = "worker"
    noun = "entry"

    def __init__(
        self,
        redis: Redis,
        settings: WorkerSettings,
        lanes: Lanes,
        consumer: str,
        pools: list[str],
        *,
        concurrency: int,
        handle_signals: bool,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.keys: Keys = settings.keys
        self.lanes = lanes
        self.consumer = consumer
        self.pools = pools
        self.concurrency = concurrency
        self.handle_signals = handle_signals
        self._running = RunningTurns(concurrency)
        self._stopping = asyncio.Event()
        self.claims = Claims(
            redis, self.keys, settings, consumer, pools, self._running, self._start, lanes
        )
        self.loop = StreamConsumer(
            redis, self.keys, lanes, consumer, pools, self._running, self.claims, self._stopping
        )

    @property
    def takeovers(self) -> int:
        return self.claims.takeovers

    # --- what a kind of worker says ------------------------------------------

    @abstractmethod
    def begin(self, entry: Entry) -> asyncio.Task[None]:
        """The task that handles one entry read (or taken over)."""

    @abstractmethod
    async def read(self) -> None:
        """Read and start entries until stopped (``self.loop.read_loop``)."""

    async def prepare(self) -> None:
        """Before the first read: the consumer groups exist."""
        await self.loop.ensure_groups()

    def duties(self) -> list[asyncio.Task[None]]:
        """Background duties beyond the heartbeat, claims and trimming."""
        return []

    async def close(self) -> None:  # noqa: B027 (optional: a kind with nothing to close)
        """After the last entry is drained or handed back."""

    # --- the lifecycle ---------------------------------------------------------

    def request_stop(self) -> None:
        """Stop reading new entries; ``run`` drains the ones in flight and returns."""
        self._stopping.set()
        self._running.wake()

    async def run(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        await self.prepare()
        s = self.settings
        helpers = [
            *self.duties(),
            upkeep.every(HEARTBEAT_S, "heartbeat", self._heartbeat, at_once=True),
            upkeep.every(s.claim_interval_seconds, "claims", self._claim),
            upkeep.every(s.trim_interval_seconds, "trim", self._trim),
        ]
        log.info("%s %s serving pools %s", self.kind, self.consumer, ", ".join(self.pools))
        try:
            await self.read()
            await self.loop.drain(s.drain_timeout_seconds, f"{self.noun}(s)")
        finally:
            for task in helpers:
                await cancel_and_wait(task)
            with contextlib.suppress(*REDIS_DOWN):
                pipe = self.redis.pipeline(transaction=False)
                for pool in self.pools:
                    pipe.zrem(self.lanes.workers(pool), self.consumer)
                await pipe.execute()
            await self.close()
            log.info("%s %s stopped", self.kind, self.consumer)

    def _start(self, entry: Entry) -> None:
        """Start an entry read or taken over (the claim loop's ``restart_reason``)."""
        task = self.begin(entry)
        suspect = entry.restart_reason is not None and last_tries(
            entry.deliveries, self.settings.max_deliveries
        )
        self._running.add(entry.entry_id, Running(entry.pool, task, suspect))

    async def guarded(self, work: Awaitable[None], ident: str) -> None:
        """Run one entry's work; a failure leaves it pending, for the claim
        loop (this worker's or another's) to retry."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except REDIS_DOWN as exc:
            log.warning(
                "%s %s interrupted by Redis (%s); it will be retried", self.noun, ident, exc
            )
        except Exception:
            log.exception("%s %s failed; it will be retried", self.noun, ident)

    # --- the duties every pool needs -------------------------------------------

    async def _heartbeat(self) -> None:
        await upkeep.heartbeat(
            self.redis,
            self.keys,
            self.consumer,
            self._running.by_pool(self.pools),
            self.concurrency * 4,
            self.lanes,
        )

    async def _claim(self) -> None:
        if not self._stopping.is_set():
            await self.claims.claim_all()

    async def _trim(self) -> None:
        await self.each_pool(
            "trimming", lambda pool: upkeep.trim(self.redis, self.keys, pool, self.lanes)
        )

    async def each_pool(self, doing: str, duty: Callable[[str], Awaitable[object]]) -> None:
        """One round of a per-pool duty; a pool that fails does not stop the others."""
        for pool in self.pools:
            try:
                await duty(pool)
            except upkeep.DUTY_ERRORS as exc:
                log.warning("%s %s: %s", doing, pool, exc)
