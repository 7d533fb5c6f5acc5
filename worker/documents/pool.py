"""The ingestion worker: a consumer-group loop over the ingestion stream,
with the guarantees of the turn workers and their machinery
(``worker/process.py``): entries are acknowledged only when the file is
ready or has failed for good; a heartbeat keeps the entries in flight fresh;
the claim loop (``worker/claims.py``) takes over files whose worker went
silent; a file whose workers keep dying is dead-lettered; on SIGTERM the
files in flight are handed back. Its own pool, so a 300-page PDF never holds
up a chat turn.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError
from redis.asyncio import Redis

from shared.keys import INGEST_POOL
from shared.streams import decode_ingest_job
from worker.config import WorkerSettings
from worker.documents.embed import Embedder
from worker.documents.extract import ExtractLimits
from worker.documents.ingest import IngestRunner, ReceivedJob
from worker.lanes import Lanes
from worker.process import ConsumerProcess
from worker.running import Entry
from worker.worker import consumer_name

log = logging.getLogger(__name__)


def extract_limits(settings: WorkerSettings) -> ExtractLimits:
    return ExtractLimits(
        timeout_seconds=settings.extract_timeout_seconds,
        memory_bytes=settings.extract_memory_mb * 1024 * 1024,
        max_pages=settings.max_pdf_pages,
        max_chars=settings.max_document_chars,
    )


class IngestWorker(ConsumerProcess):
    """Read and index files until stopped (``burst``: until the stream is
    empty and nothing runs, for tests)."""

    kind = "ingestion worker"
    noun = "file"

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
        super().__init__(
            redis,
            settings,
            Lanes.documents(settings.keys),
            consumer or "ingest-" + consumer_name(),
            [INGEST_POOL],
            concurrency=settings.ingest_concurrency,
            handle_signals=handle_signals,
        )
        self.runner = IngestRunner(
            redis,
            raw,
            self.keys,
            embedder,
            extract_limits(settings),
            max_deliveries=settings.max_deliveries,
        )
        self.burst = burst

    async def read(self) -> None:
        async def idle() -> bool:
            # Nothing new: is anything still pending (a dead worker's file)?
            await self.claims.claim_all()
            return not self._running and not await self._pending()

        await self.loop.read_loop(self._start, idle=idle if self.burst else None)

    async def _pending(self) -> int:
        info = await self.redis.xpending(self.lanes.stream(INGEST_POOL), self.lanes.group)
        return int(info["pending"])

    def begin(self, entry: Entry) -> asyncio.Task[None]:
        try:
            job = decode_ingest_job(entry.fields)
        except (ValidationError, KeyError):
            log.error("dropping malformed ingestion entry %s", entry.entry_id)
            reject = self.runner.reject_malformed(entry.pool, entry.entry_id, entry.fields)
            return asyncio.create_task(reject)
        received = ReceivedJob(entry.pool, entry.entry_id, job, deliveries=entry.deliveries)
        return asyncio.create_task(self._run_job(received), name=f"ingest-{job.file_id}")

    async def _run_job(self, d: ReceivedJob) -> None:
        await self.guarded(self.runner.run(d), d.job.file_id)
