"""The worker process: a consumer-group loop over the prompt streams.

Each worker reads turns with XREADGROUP (``>``: never-delivered entries), runs
up to ``concurrency`` at once, and acknowledges each only after its reply is
stored and ``stream_end`` written. Three background loops keep the pool
healthy: a heartbeat (liveness for ``/ready``, and refreshing the idle time
of this worker's in-flight entries so nobody takes them over), a claim loop
(XAUTOCLAIM of entries whose worker went silent, so a turn outlives the
process running it), and the stop-request listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass
from typing import cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import KeyT, StreamIdT

from shared.aio import cancel_and_wait
from shared.keys import FAIR_REPAIR_S, HEARTBEAT_S, WORKER_BLOCK_MS, WORKER_GROUP, Keys
from shared.models_file import ModelCatalog
from shared.streams import (
    DeadLetter,
    StreamEntries,
    StreamResponse,
    decode_turn,
    queue_dead_letter,
)
from worker import upkeep
from worker.backends import BackendPool
from worker.cancel import CancelWatcher
from worker.config import WorkerSettings
from worker.errors import TurnError
from worker.turn import Delivery, TurnRunner

log = logging.getLogger(__name__)

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class PoisonTurn(TurnError):
    """A turn whose workers kept dying on it: dead-lettered past the limit."""

    code = "internal"


@dataclass(slots=True)
class _Running:
    pool: str
    task: asyncio.Task[None]
    #: A takeover on one of the turn's last tries (see ``_last_tries``).
    suspect: bool = False


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
        self.runner = TurnRunner(redis, self.keys, catalog, self.backends, self.cancels, settings)
        self.burst = burst
        self.max_turns = max_turns
        self.handle_signals = handle_signals
        self.started_turns = 0
        self.takeovers = 0
        self._running: dict[str, _Running] = {}
        self._slot_free = asyncio.Event()
        self._stopping = asyncio.Event()
        self._claim_cursors = dict.fromkeys(self.pools, "0-0")
        #: The claim loop found every slot busy (or filled them all): the next
        #: free slot goes to a takeover, so abandoned turns are not starved by
        #: new ones while the queue stays long.
        self._claim_owed = False

    # --- lifecycle -----------------------------------------------------------

    def request_stop(self) -> None:
        """Stop reading new turns; ``run`` drains the ones in flight and returns."""
        self._stopping.set()
        self._slot_free.set()

    async def run(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        await self._ensure_groups()
        await self._warm_up()
        helpers = [
            asyncio.create_task(self.cancels.run(), name="cancel-listener"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._claim_loop(), name="claims"),
            asyncio.create_task(self._trim_loop(), name="trim"),
            asyncio.create_task(self._fair_loop(), name="fair-lines"),
        ]
        log.info("worker %s serving pools %s", self.consumer, ", ".join(self.pools))
        try:
            await self._read_loop()
            await self._drain()
        finally:
            for task in helpers:
                await cancel_and_wait(task)
            with contextlib.suppress(*_REDIS_DOWN):
                pipe = self.redis.pipeline(transaction=False)
                for pool in self.pools:
                    pipe.zrem(self.keys.workers(pool), self.consumer)
                await pipe.execute()
            await self.backends.aclose()
            log.info("worker %s stopped", self.consumer)

    async def _warm_up(self) -> None:
        """Load local models before taking turns, so the first user does not wait."""
        for spec in self.catalog.in_pools(self.pools):
            load = getattr(self.backends.get(spec), "load", None)
            if load is not None:
                await load()

    async def _ensure_groups(self) -> None:
        for pool in self.pools:
            try:
                # From 0: turns queued before any worker existed are served too.
                await self.redis.xgroup_create(
                    self.keys.prompts(pool), WORKER_GROUP, id="0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # --- reading turns -------------------------------------------------------

    async def _read_loop(self) -> None:
        streams: dict[KeyT, StreamIdT] = {self.keys.prompts(pool): ">" for pool in self.pools}
        pool_of = {self.keys.prompts(pool): pool for pool in self.pools}
        backoff = 0.1
        while not self._stopping.is_set():
            if self.max_turns is not None and self.started_turns >= self.max_turns:
                break
            free = self.settings.concurrency - len(self._running)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            if self._claim_owed:
                self._claim_owed = False
                await self._claim_all()
                continue
            read = asyncio.ensure_future(
                self.redis.xreadgroup(
                    WORKER_GROUP, self.consumer, streams, count=free, block=WORKER_BLOCK_MS
                )
            )
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({read, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not read.done():
                # Shutting down: abandon the blocked read (its connection is
                # dropped); anything it was handed is handed back in _drain.
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
                await self._ensure_groups()
                continue
            except _REDIS_DOWN as exc:
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for stream, entries in response or []:
                for entry_id, fields in entries:
                    self._start(pool_of[stream], entry_id, fields, deliveries=1)
            if self.burst and not response and not self._running:
                break

    def _start(
        self,
        pool: str,
        entry_id: str,
        fields: dict[str, str] | None,
        *,
        deliveries: int,
        restart_reason: str | None = None,
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
            task = asyncio.create_task(self._drop_malformed(pool, entry_id, fields, str(exc)))
        else:
            delivery = Delivery(entry_id, pool, turn, deliveries, restart_reason)
            self.started_turns += 1
            task = asyncio.create_task(self._run_turn(delivery), name=f"turn-{turn.turn_id}")
        suspect = restart_reason is not None and self._last_tries(deliveries)
        self._running[entry_id] = _Running(pool, task, suspect)
        task.add_done_callback(lambda _t: self._done(entry_id))

    def _last_tries(self, deliveries: int) -> bool:
        """Whether a takeover is one of the turn's last two tries before the
        dead letter. The turns whose workers died with it were taken over
        with it as often, so its last tries run as the only such turn on
        their worker: a turn that kills its workers is dead-lettered alone,
        not with the turns that happened to run beside it."""
        limit = self.settings.max_deliveries
        return limit - 1 <= deliveries <= limit

    def _done(self, entry_id: str) -> None:
        self._running.pop(entry_id, None)
        self._slot_free.set()

    async def _run_turn(self, d: Delivery) -> None:
        try:
            if d.deliveries > self.settings.max_deliveries:
                error = PoisonTurn(
                    f"this reply failed {d.deliveries - 1} times (its workers stopped while "
                    "generating it); it was set aside"
                )
                reply = self.runner.reply_message(d, "", "error", None, error, None)
                await self.runner.finish(d, reply, error, dead=True)
                await self.redis.hincrby(self.keys.metrics(d.pool), "dead_letters", 1)
                return
            await self.runner.run(d)
        except asyncio.CancelledError:
            raise
        except _REDIS_DOWN as exc:
            # Left pending: the claim loop (ours or another worker's) retries it.
            log.warning("turn %s interrupted by Redis (%s); it will be retried", d.entry_id, exc)
        except Exception:
            log.exception("turn %s failed; it will be retried", d.entry_id)

    async def _drop_malformed(
        self, pool: str, entry_id: str, fields: dict[str, str], why: str
    ) -> None:
        pipe = self.redis.pipeline(transaction=False)
        letter = DeadLetter(
            turn=None,
            code="bad_request",
            error=f"not a turn: {why}"[:1000],
            deliveries=1,
            entry_id=entry_id,
            raw=str(fields)[:10_000],
        )
        queue_dead_letter(pipe, self.keys, pool, letter)
        # Its user is unknown: a slot it held is given back (not passed on;
        # the fair-line repair moves that user's line on).
        self.runner.fair.queue_release(pipe, pool, entry_id, "", self.settings.fair_turns_per_user)
        await pipe.execute()

    # --- keeping the pool healthy -------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._heartbeat()
            except (*_REDIS_DOWN, ResponseError) as exc:  # NOGROUP: the read loop recreates it
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_S)

    async def _heartbeat(self) -> None:
        by_pool: dict[str, list[str]] = {pool: [] for pool in self.pools}
        for entry_id, running in self._running.items():
            by_pool.setdefault(running.pool, []).append(entry_id)
        await upkeep.heartbeat(
            self.redis, self.keys, self.consumer, by_pool, self.settings.concurrency * 4
        )

    async def _claim_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.claim_interval_seconds)
            if self._stopping.is_set():
                continue
            await self._claim_all()

    async def _claim_all(self) -> None:
        try:
            for pool in self.pools:
                await self._claim(pool)
        except _REDIS_DOWN as exc:
            log.warning("claim loop: %s", exc)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise

    async def _claim(self, pool: str) -> None:
        free = self.settings.concurrency - len(self._running)
        if free <= 0:
            self._claim_owed = True
            return
        key = self.keys.prompts(pool)
        idle_ms = int(self.settings.claim_idle_seconds * 1000)
        scan = free * 10
        # redis-py types both replies loosely, for every kind of client.
        rows = cast(
            list[dict[str, str]],
            await self.redis.xpending_range(
                key, WORKER_GROUP, min=self._claim_cursors[pool], max="+", count=scan, idle=idle_ms
            ),
        )
        # The next pass goes on after the last entry looked at, or from the start.
        self._claim_cursors[pool] = f"({rows[-1]['message_id']}" if len(rows) == scan else "0-0"
        suspects = sum(r.suspect for r in self._running.values())
        counts: dict[str, int] = {}
        for row in rows:
            delivered = int(row["times_delivered"])
            if self._last_tries(delivered + 1):
                if suspects:
                    continue
                suspects += 1
            counts[row["message_id"]] = delivered + 1
            if len(counts) == free:
                self._claim_owed = True  # more may be waiting
                break
        if not counts:
            return
        # XCLAIM with the threshold again: another worker may have been faster.
        claimed = cast(
            StreamEntries,
            await self.redis.xclaim(key, WORKER_GROUP, self.consumer, idle_ms, list(counts)),
        )
        entries = [(eid, fields) for eid, fields in claimed if fields is not None]
        if not entries:
            return
        self.takeovers += len(entries)
        await self.redis.hincrby(self.keys.metrics(pool), "takeovers", len(entries))
        for entry_id, fields in entries:
            log.info("taking over turn %s on %s", entry_id, pool)
            self._start(
                pool,
                entry_id,
                fields,
                deliveries=counts.get(entry_id, 2),
                restart_reason="the worker generating this reply stopped; starting again",
            )

    async def _trim_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.trim_interval_seconds)
            for pool in self.pools:
                try:
                    await self.trim(pool)
                except (*_REDIS_DOWN, ResponseError) as exc:
                    log.warning("trimming %s: %s", pool, exc)

    async def _fair_loop(self) -> None:
        while True:
            await asyncio.sleep(FAIR_REPAIR_S)
            for pool in self.pools:
                try:
                    await self.repair_lines(pool)
                except (*_REDIS_DOWN, ResponseError) as exc:
                    log.warning("repairing the fair lines of %s: %s", pool, exc)

    async def repair_lines(self, pool: str) -> tuple[int, int]:
        """Give back slots lost outside a finish and move stalled lines on
        (``FairLines.repair``); returns (slots given back, turns moved)."""
        lost, moved = await self.runner.fair.repair(pool, self.settings.fair_turns_per_user)
        if lost or moved:
            log.info(
                "fair lines of %s: %d lost slot(s) given back, %d waiting turn(s) moved on",
                pool,
                lost,
                moved,
            )
        return lost, moved

    async def trim(self, pool: str) -> int:
        """Drop the acknowledged turns at the head of a prompt stream (see
        ``upkeep.trim``); return how many went."""
        return await upkeep.trim(self.redis, self.keys, pool)

    # --- shutdown -------------------------------------------------------------

    async def _drain(self) -> None:
        """Let turns in flight finish, up to the drain timeout; hand back the rest."""
        if self._running:
            tasks = [r.task for r in self._running.values()]
            log.info(
                "draining %d turn(s) for up to %.0fs",
                len(tasks),
                self.settings.drain_timeout_seconds,
            )
            await asyncio.wait(tasks, timeout=self.settings.drain_timeout_seconds)
        leftovers = list(self._running.values())
        await asyncio.gather(*(cancel_and_wait(r.task) for r in leftovers))
        with contextlib.suppress(*_REDIS_DOWN):
            await self._hand_back()

    async def _hand_back(self) -> None:
        handed = await upkeep.hand_back(self.redis, self.keys, self.consumer, self.pools)
        if handed:
            log.info("handed back %d turn(s) to the other workers", handed)
