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

from pydantic import ValidationError
from redis.asyncio import Redis

from shared.aio import cancel_and_wait
from shared.keys import HEARTBEAT_S, INGEST_POOL
from shared.streams import decode_ingest_job
from worker import upkeep
from worker.claims import Claims
from worker.config import WorkerSettings
from worker.consumer import REDIS_DOWN, StreamConsumer
from worker.documents.embed import Embedder
from worker.documents.extract import ExtractLimits
from worker.documents.ingest import IngestRunner, ReceivedJob
from worker.lanes import Lanes
from worker.running import Running, RunningTurns, last_tries
from worker.worker import consumer_name

log = logging.getLogger(__name__)


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
        self.loop = StreamConsumer(
            redis,
            self.keys,
            self.lanes,
            self.consumer,
            self.pools,
            self._running,
            self.claims,
            self._stopping,
        )

    def request_stop(self) -> None:
        self._stopping.set()
        self._running.wake()

    async def run(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        await self.loop.ensure_groups()
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
            with contextlib.suppress(*REDIS_DOWN):
                await self.redis.zrem(self.lanes.workers(INGEST_POOL), self.consumer)
            log.info("ingestion worker %s stopped", self.consumer)

    async def _read_loop(self) -> None:
        async def idle() -> bool:
            # Nothing new: is anything still pending (a dead worker's file)?
            await self.claims.claim_all()
            return not self._running and not await self._pending()

        await self.loop.read_loop(self._start, idle=idle if self.burst else None)

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
        except REDIS_DOWN as exc:
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
        await self.loop.drain(self.settings.drain_timeout_seconds, "file(s)")
