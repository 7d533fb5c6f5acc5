"""The worker process: a consumer-group loop over the prompt streams.

Each worker reads turns with XREADGROUP (``>``: never-delivered entries), runs
up to ``concurrency`` at once (``running.py``), and acknowledges each only
after its reply is stored and ``stream_end`` written (``turn.py``). Background
loops keep the pool healthy: a heartbeat (liveness for ``/ready``, and
refreshing the idle time of this worker's in-flight entries so nobody takes
them over), the claim loop (``claims.py``: taking over turns whose worker went
silent, so a turn outlives the process running it), trimming, the fair-line
repair, and the stop-request listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from redis.asyncio import Redis

from shared.aio import cancel_and_wait
from shared.keys import CLEANUP_SWEEP_S, FAIR_REPAIR_S, HEARTBEAT_S, Keys
from shared.models_file import ModelCatalog
from shared.streams import decode_turn
from worker import upkeep
from worker.backends import BackendPool
from worker.cancel import CancelWatcher
from worker.claims import Claims
from worker.config import WorkerSettings
from worker.consumer import REDIS_DOWN, StreamConsumer
from worker.lanes import Lanes
from worker.running import Running, RunningTurns, last_tries
from worker.turn import ReceivedTurn, TurnRunner

log = logging.getLogger(__name__)


def consumer_name() -> str:
    """Unique per process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """Serve turns for ``pools`` until stopped.

    ``burst``: return once the streams are empty and nothing is running;
    ``max_turns``: return after starting that many turns. Both make the
    worker usable in-process from tests (``handle_signals=False``).
    """

    def __init__(
        self,
        redis: Redis,
        settings: WorkerSettings,
        catalog: ModelCatalog,
        *,
        pools: list[str] | None = None,
        backends: BackendPool | None = None,
        consumer: str | None = None,
        burst: bool = False,
        max_turns: int | None = None,
        handle_signals: bool = False,
        raw: Redis | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.keys: Keys = settings.keys
        self.catalog = catalog
        self.pools = pools or catalog.pools()
        unknown = set(self.pools) - set(catalog.pools())
        if unknown:
            log.warning("pools %s have no model in the models file", sorted(unknown))
        self.consumer = consumer or consumer_name()
        token = settings.hf_token.get_secret_value() if settings.hf_token else None
        self.backends = backends or BackendPool(
            hf_token=token, data_dir=settings.data_dir, idle_timeout=settings.idle_timeout_seconds
        )
        self.cancels = CancelWatcher(redis, self.keys.cancel_channel())
        self.runner = TurnRunner(
            redis, self.keys, catalog, self.backends, self.cancels, settings, raw=raw
        )
        self.burst = burst
        self.max_turns = max_turns
        self.handle_signals = handle_signals
        self.started_turns = 0
        self._running = RunningTurns(settings.concurrency)
        self._stopping = asyncio.Event()
        self.claims = Claims(
            redis, self.keys, settings, self.consumer, self.pools, self._running, self._start
        )
        self.loop = StreamConsumer(
            redis,
            self.keys,
            Lanes.turns(self.keys),
            self.consumer,
            self.pools,
            self._running,
            self.claims,
            self._stopping,
        )

    @property
    def takeovers(self) -> int:
        return self.claims.takeovers

    # --- lifecycle -----------------------------------------------------------

    def request_stop(self) -> None:
        """Stop reading new turns; ``run`` drains the ones in flight and returns."""
        self._stopping.set()
        self._running.wake()

    async def run(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        await self._ensure_groups()
        await self._warm_up()
        s = self.settings
        helpers = [
            asyncio.create_task(self.cancels.run(), name="cancel-listener"),
            upkeep.every(HEARTBEAT_S, "heartbeat", self._heartbeat, at_once=True),
            upkeep.every(s.claim_interval_seconds, "claims", self._claim_all),
            upkeep.every(s.trim_interval_seconds, "trim", self._trim_all),
            upkeep.every(FAIR_REPAIR_S, "fair-lines", self._repair_all),
            # Imports and deletes a crashed process left half done.
            upkeep.every(CLEANUP_SWEEP_S, "storage-sweep", self._sweep_storage),
        ]
        log.info("worker %s serving pools %s", self.consumer, ", ".join(self.pools))
        try:
            await self._read_loop()
            await self._drain()
        finally:
            for task in helpers:
                await cancel_and_wait(task)
            with contextlib.suppress(*REDIS_DOWN):
                pipe = self.redis.pipeline(transaction=False)
                for pool in self.pools:
                    pipe.zrem(self.keys.workers(pool), self.consumer)
                await pipe.execute()
            await self.backends.aclose()
            log.info("worker %s stopped", self.consumer)

    async def _warm_up(self) -> None:
        """Load local models before taking turns, so the first user does not wait."""
        for spec in self.catalog.in_pools(self.pools):
            await self.backends.get(spec).load()

    async def _ensure_groups(self) -> None:
        await self.loop.ensure_groups()

    # --- reading turns -------------------------------------------------------

    async def _read_loop(self) -> None:
        def done() -> bool:
            return self.max_turns is not None and self.started_turns >= self.max_turns

        async def idle() -> bool:
            return True

        await self.loop.read_loop(self._start, done=done, idle=idle if self.burst else None)

    def _start(
        self,
        pool: str,
        entry_id: str,
        fields: dict[str, str] | None,
        deliveries: int,
        restart_reason: str | None,
    ) -> None:
        if fields is None:  # trimmed away while pending
            return
        try:
            turn = decode_turn(fields)
        except (ValidationError, KeyError) as exc:
            # Not the error's text in the log: pydantic quotes the input, session id and all
            # (the dead-letter entry keeps it).
            what = exc.errors()[0]["loc"] if isinstance(exc, ValidationError) else exc.args
            log.error("dropping malformed turn %s on %s (bad field %s)", entry_id, pool, what)
            drop = self.runner.reject_malformed(pool, entry_id, fields, str(exc))
            task = asyncio.create_task(drop)
        else:
            received = ReceivedTurn(entry_id, pool, turn, deliveries, restart_reason)
            self.started_turns += 1
            task = asyncio.create_task(self._run_turn(received), name=f"turn-{turn.turn_id}")
        suspect = restart_reason is not None and last_tries(
            deliveries, self.settings.max_deliveries
        )
        self._running.add(entry_id, Running(pool, task, suspect))

    async def _run_turn(self, d: ReceivedTurn) -> None:
        try:
            if d.deliveries > self.settings.max_deliveries:
                await self.runner.reject_poison(d)
            else:
                await self.runner.run(d)
        except asyncio.CancelledError:
            raise
        except REDIS_DOWN as exc:
            # Left pending: the claim loop (ours or another worker's) retries it.
            log.warning("turn %s interrupted by Redis (%s); it will be retried", d.entry_id, exc)
        except Exception:
            log.exception("turn %s failed; it will be retried", d.entry_id)

    # --- keeping the pool healthy -------------------------------------------

    async def _heartbeat(self) -> None:
        await upkeep.heartbeat(
            self.redis,
            self.keys,
            self.consumer,
            self._running.by_pool(self.pools),
            self.settings.concurrency * 4,
        )

    async def _claim_all(self) -> None:
        if not self._stopping.is_set():
            await self.claims.claim_all()

    async def _trim_all(self) -> None:
        await self._each_pool("trimming", lambda pool: upkeep.trim(self.redis, self.keys, pool))

    async def _sweep_storage(self) -> None:
        swept = await self.runner.store.bulk.sweep()
        if swept:
            log.info("finished or removed %d half-done imports and deletes", swept)

    async def _repair_all(self) -> None:
        per_user = self.settings.fair_turns_per_user
        await self._each_pool(
            "repairing the fair lines of",
            lambda pool: upkeep.repair_lines(self.runner.fair, pool, per_user),
        )

    async def _each_pool(self, doing: str, duty: Callable[[str], Awaitable[object]]) -> None:
        """One round of a per-pool duty; a pool that fails does not stop the others."""
        for pool in self.pools:
            try:
                await duty(pool)
            except upkeep.DUTY_ERRORS as exc:
                log.warning("%s %s: %s", doing, pool, exc)

    # --- shutdown -------------------------------------------------------------

    async def _drain(self) -> None:
        """Let turns in flight finish, up to the drain timeout; hand back the rest."""
        await self.loop.drain(self.settings.drain_timeout_seconds, "turn(s)")
