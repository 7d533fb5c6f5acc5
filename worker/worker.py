"""The worker process: a consumer-group loop over the prompt streams.

Each worker reads turns with XREADGROUP (``>``: never-delivered entries), runs
up to ``concurrency`` at once (``running.py``), and acknowledges each only
after its reply is stored and ``stream_end`` written (``turn.py``). The
lifecycle and the duties every pool needs (heartbeat, the claim loop of
``claims.py``, trimming, draining) are ``ConsumerProcess``'s
(``process.py``); a turn worker adds the fair-line repair, the storage
sweep, the admin's jobs and the stop-request listener.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from pydantic import ValidationError
from redis.asyncio import Redis

from shared.keys import CLEANUP_SWEEP_S, FAIR_REPAIR_S, JOB_POLL_S
from shared.models_file import ModelCatalog
from shared.streams import decode_turn
from worker import upkeep
from worker.backends import BackendPool
from worker.cancel import CancelWatcher
from worker.config import WorkerSettings
from worker.jobs import JobRunner
from worker.lanes import Lanes
from worker.process import ConsumerProcess
from worker.running import Entry
from worker.turn import ReceivedTurn, TurnRunner

log = logging.getLogger(__name__)


def consumer_name() -> str:
    """Unique per process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker(ConsumerProcess):
    """Serve turns for ``pools`` until stopped.

    ``burst``: return once the streams are empty and nothing is running;
    ``max_turns``: return after starting that many turns. Both make the
    worker usable in-process from tests (``handle_signals=False``).
    """

    noun = "turn"

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
        pools = pools or catalog.pools()
        unknown = set(pools) - set(catalog.pools())
        if unknown:
            log.warning("pools %s have no model in the models file", sorted(unknown))
        consumer = consumer or consumer_name()
        super().__init__(
            redis,
            settings,
            Lanes.turns(settings.keys),
            consumer,
            pools,
            concurrency=settings.concurrency,
            handle_signals=handle_signals,
        )
        self.catalog = catalog
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
        self.started_turns = 0
        self.jobs = JobRunner(
            redis,
            self.keys,
            self.consumer,
            retention_interval=settings.retention_interval_seconds,
            audit_maxlen=settings.audit_maxlen,
        )

    # --- what a turn worker adds to the lifecycle -------------------------------

    async def prepare(self) -> None:
        await self.jobs.ensure_group()
        await self.loop.ensure_groups()
        # Load local models before taking turns, so the first user does not wait.
        for spec in self.catalog.in_pools(self.pools):
            await self.backends.get(spec).load()

    def duties(self) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(self.cancels.run(), name="cancel-listener"),
            upkeep.every(FAIR_REPAIR_S, "fair-lines", self._repair_all),
            # Imports and deletes a crashed process left half done.
            upkeep.every(CLEANUP_SWEEP_S, "storage-sweep", self._sweep_storage),
            upkeep.every(JOB_POLL_S, "jobs", self.jobs.poll, at_once=True),
        ]

    async def close(self) -> None:
        await self.backends.aclose()

    # --- reading turns -------------------------------------------------------

    async def read(self) -> None:
        def done() -> bool:
            return self.max_turns is not None and self.started_turns >= self.max_turns

        async def idle() -> bool:
            return True

        await self.loop.read_loop(self._start, done=done, idle=idle if self.burst else None)

    def begin(self, entry: Entry) -> asyncio.Task[None]:
        pool, entry_id, fields = entry.pool, entry.entry_id, entry.fields
        try:
            turn = decode_turn(fields)
        except (ValidationError, KeyError) as exc:
            # Not the error's text in the log: pydantic quotes the input, session id and all
            # (the dead-letter entry keeps it).
            what = exc.errors()[0]["loc"] if isinstance(exc, ValidationError) else exc.args
            log.error("dropping malformed turn %s on %s (bad field %s)", entry_id, pool, what)
            return asyncio.create_task(
                self.runner.reject_malformed(pool, entry_id, fields, str(exc))
            )
        self.started_turns += 1
        received = ReceivedTurn(
            pool,
            entry_id,
            turn,
            deliveries=entry.deliveries,
            restart_reason=entry.restart_reason,
        )
        return asyncio.create_task(self._run_turn(received), name=f"turn-{turn.turn_id}")

    async def _run_turn(self, d: ReceivedTurn) -> None:
        if d.deliveries > self.settings.max_deliveries:
            await self.guarded(self.runner.reject_poison(d), d.entry_id)
        else:
            await self.guarded(self.runner.run(d), d.entry_id)

    # --- keeping the pool healthy -------------------------------------------

    async def _sweep_storage(self) -> None:
        swept = await self.runner.store.bulk.sweep()
        if swept:
            log.info("finished or removed %d half-done imports and deletes", swept)

    async def _repair_all(self) -> None:
        per_user = self.settings.fair_turns_per_user
        await self.each_pool(
            "repairing the fair lines of",
            lambda pool: upkeep.repair_lines(self.runner.fair, pool, per_user),
        )
