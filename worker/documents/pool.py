"""The ingestion worker: a consumer-group loop over the ingestion stream,
with the guarantees of the turn workers (``worker/worker.py``) and their
machinery: entries are acknowledged only when the file is ready or has
failed for good; a heartbeat keeps the entries in flight fresh; the claim
loop (``worker/claims.py``) takes over files whose worker went silent; a
file whose workers keep dying is dead-lettered; on SIGTERM the files in
flight are handed back. Its own pool, so a 300-page PDF never holds up a
chat turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import KeyT, StreamIdT

from shared.aio import cancel_and_wait
from shared.keys import HEARTBEAT_S, INGEST_POOL, WORKER_BLOCK_MS
from shared.streams import StreamResponse, decode_ingest_job
from worker import upkeep
from worker.claims import Claims
from worker.config import WorkerSettings
from worker.documents.embed import Embedder
from worker.documents.extract import ExtractLimits
from worker.documents.ingest import IngestRunner, ReceivedJob
from worker.lanes import Lanes
from worker.running import Running, RunningTurns, last_tries
from worker.worker import consumer_name

log = logging.getLogger(__name__)

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


def extract_limits(settings: WorkerSettings) -> ExtractLimits:
    return ExtractLimits(
        timeout_seconds=settings.extract_timeout_seconds,
        memory_bytes=settings.extract_memory_mb * 1024 * 1024,
        max_pages=settings.max_pdf_pages,
        max_chars=settings.max_document_chars,
    )


class IngestWorker:
    """Read and index files until stopped (``burst``: until the stream is
    empty and nothing runs, for tests)."""

    def __init__(
        self,
        redis: Redis,
        raw: Redis,
        settings: WorkerSettings,
        embedder: Embedder,
        *,
        consumer: str | None = None,
        burst: bool = False,
        handle_signals: bool = False,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = settings.keys
        self.lanes = Lanes.documents(self.keys)
        self.pools = [INGEST_POOL]
        self.consumer = consumer or "ingest-" + consumer_name()
        self.runner = IngestRunner(
            redis,
            raw,
            self.keys,
            embedder,
            extract_limits(settings),
            max_deliveries=settings.max_deliveries,
        )
        self.burst = burst
        self.handle_signals = handle_signals
        self._running = RunningTurns(settings.ingest_concurrency)
        self._stopping = asyncio.Event()
        self.claims = Claims(
            redis,
            self.keys,
            settings,
            self.consumer,
            self.pools,
            self._running,
            self._start,
            self.lanes,
        )

    def request_stop(self) -> None:
        self._stopping.set()
        self._running.wake()

    async def run(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        await self._ensure_group()
        s = self.settings
        helpers = [
            upkeep.every(HEARTBEAT_S, "heartbeat", self._heartbeat, at_once=True),
            upkeep.every(s.claim_interval_seconds, "claims", self._claim),
            upkeep.every(s.trim_interval_seconds, "trim", self._trim),
        ]
        log.info("ingestion worker %s started", self.consumer)
        try:
            await self._read_loop()
            await self._drain()
        finally:
            for task in helpers:
                await cancel_and_wait(task)
            with contextlib.suppress(*_REDIS_DOWN):
                await self.redis.zrem(self.lanes.workers(INGEST_POOL), self.consumer)
            log.info("ingestion worker %s stopped", self.consumer)

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(
                self.lanes.stream(INGEST_POOL), self.lanes.group, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read_loop(self) -> None:
        key = self.lanes.stream(INGEST_POOL)
        streams: dict[KeyT, StreamIdT] = {key: ">"}
        backoff = 0.1
        while not self._stopping.is_set():
            free = self._running.free
            if free <= 0:
                await self._running.wait_for_slot()
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
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({read, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not read.done():
                await cancel_and_wait(read)
                break
            try:
                response = cast(StreamResponse, read.result())
                backoff = 0.1
            except ResponseError as exc:
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                await self._ensure_group()
                continue
            except _REDIS_DOWN as exc:
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    self._start(INGEST_POOL, entry_id, fields, 1, None)
            if self.burst and not response and not self._running:
                # Nothing new: anything still pending (a dead worker's file)?
                await self.claims.claim_all()
                if not self._running and not await self._pending():
                    break

    async def _pending(self) -> int:
        info = await self.redis.xpending(self.lanes.stream(INGEST_POOL), self.lanes.group)
        return int(info["pending"])

    def _start(
        self,
        pool: str,
        entry_id: str,
        fields: dict[str, str] | None,
        deliveries: int,
        restart_reason: str | None,
    ) -> None:
        if fields is None:
            return
        try:
            job = decode_ingest_job(fields)
        except (ValidationError, KeyError):
            log.error("dropping malformed ingestion entry %s", entry_id)
            task = asyncio.create_task(self.runner.reject_malformed(pool, entry_id, fields))
        else:
            received = ReceivedJob(entry_id, pool, job, deliveries)
            task = asyncio.create_task(self._run_job(received), name=f"ingest-{job.file_id}")
        suspect = restart_reason is not None and last_tries(
            deliveries, self.settings.max_deliveries
        )
        self._running.add(entry_id, Running(pool, task, suspect))

    async def _run_job(self, d: ReceivedJob) -> None:
        try:
            await self.runner.run(d)
        except asyncio.CancelledError:
            raise
        except _REDIS_DOWN as exc:
            log.warning("file %s interrupted by Redis (%s); it will be retried", d.entry_id, exc)
        except Exception:
            log.exception("file %s failed; it will be retried", d.job.file_id)

    async def _heartbeat(self) -> None:
        await upkeep.heartbeat(
            self.redis,
            self.keys,
            self.consumer,
            self._running.by_pool(self.pools),
            self.settings.ingest_concurrency * 4,
            self.lanes,
        )

    async def _claim(self) -> None:
        if not self._stopping.is_set():
            await self.claims.claim_all()

    async def _trim(self) -> None:
        await upkeep.trim(self.redis, self.keys, INGEST_POOL, self.lanes)

    async def _drain(self) -> None:
        if self._running:
            tasks = [r.task for r in self._running]
            await asyncio.wait(tasks, timeout=self.settings.drain_timeout_seconds)
        leftovers = list(self._running)
        await asyncio.gather(*(cancel_and_wait(r.task) for r in leftovers))
        with contextlib.suppress(*_REDIS_DOWN):
            await upkeep.hand_back(self.redis, self.keys, self.consumer, self.pools, self.lanes)
