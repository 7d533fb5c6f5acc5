"""Ingesting one file: read its text (bounded, in a child process), cut it
into chunks, embed and index them in steps, mark it ready, acknowledge.

Each step records its progress (``chunks_done``) with the chunks it wrote,
in one pipeline, so a worker that takes a file over continues from the last
whole step; chunk ``n`` of a file always has the same key, so a step written
twice overwrites itself: no duplicate chunks whatever dies when. Marking the
file ready goes in the same pipeline as the XACK; a job delivered again after
that finds the file ready and only acknowledges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.files import FINAL_STATUSES, FileRecord, FileStore
from shared.keys import EMBED_BATCH, Keys
from shared.streams import IngestDeadLetter, IngestJob, queue_ingest_dead
from worker.documents.chunk import chunk_pages
from worker.documents.embed import Embedder
from worker.documents.extract import ExtractError, ExtractLimits, extract
from worker.documents.index import ensure_index, queue_chunk
from worker.lanes import Lanes
from worker.running import Delivery

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class ReceivedJob(Delivery):
    """A file to ingest as this worker received it from the ingestion stream."""

    job: IngestJob


class IngestRunner:
    def __init__(
        self,
        redis: Redis,
        raw: Redis,
        keys: Keys,
        embedder: Embedder,
        limits: ExtractLimits,
        *,
        max_deliveries: int,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.files = FileStore(redis, keys, raw=raw)
        self.embedder = embedder
        self.limits = limits
        self.max_deliveries = max_deliveries
        self.lanes = Lanes.documents(keys)
        self._index_ready = False

    def _queue_ack(self, pipe: Pipeline, d: ReceivedJob) -> None:
        pipe.xack(self.lanes.stream(d.pool), self.lanes.group, d.entry_id)

    async def run(self, d: ReceivedJob) -> None:
        fid = d.job.file_id
        record = await self.files.get(fid)
        if record is None or record.owner != d.job.user_id or record.status in FINAL_STATUSES:
            # Deleted while queued, or finished by an earlier delivery.
            pipe = self.redis.pipeline(transaction=False)
            self._queue_ack(pipe, d)
            await pipe.execute()
            return
        if d.deliveries > self.max_deliveries:
            await self._fail(
                d,
                f"reading this file stopped its workers {d.deliveries - 1} times; it was set aside",
                dead=True,
            )
            return
        await self._update(fid, status="reading")
        data = await self.files.data(fid)
        if data is None:
            await self._fail(d, "the file's contents are missing")
            return
        try:
            extracted = await extract(record.kind, record.mime, data, self.limits)
        except ExtractError as exc:
            log.info("file %s failed: %s", fid, exc.reason)
            await self._fail(d, exc.reason)
            return
        chunks = chunk_pages(extracted.pages, paged=record.kind == "pdf")
        if not chunks:
            await self._fail(d, "no text was found in the file (a scan holds only images)")
            return
        pages = len(extracted.pages) if record.kind == "pdf" else 0
        start = _resume_from(record, len(chunks))
        await self._update(
            fid, status="indexing", pages=pages, chunks_total=len(chunks), chunks_done=start
        )
        if not self._index_ready:
            await ensure_index(self.redis, self.keys, self.embedder.dim)
            self._index_ready = True
        for first in range(start, len(chunks), EMBED_BATCH):
            batch = chunks[first : first + EMBED_BATCH]
            vectors = await self.embedder.embed([c.text for c in batch])
            pipe = self.redis.pipeline(transaction=False)
            for c, vector in zip(batch, vectors, strict=True):
                queue_chunk(
                    pipe,
                    self.keys,
                    file_id=fid,
                    owner=record.owner,
                    n=c.n,
                    page=c.page,
                    text=c.text,
                    vector=vector,
                )
            self.files.queue_update(pipe, fid, chunks_done=first + len(batch))
            pipe.exists(self.keys.file(fid))
            still_there = (await pipe.execute())[-1]
            if not still_there:
                # Deleted while it was indexed: take back what was written.
                log.info("file %s was deleted while indexed; dropping its chunks", fid)
                pipe = self.redis.pipeline(transaction=False)
                self.files.queue_delete_chunks(pipe, fid, first + len(batch))
                self._queue_ack(pipe, d)
                await pipe.execute()
                return
        pipe = self.redis.pipeline(transaction=False)
        self.files.queue_update(
            pipe,
            fid,
            status="ready",
            embedder=self.embedder.name,
            reason="the text was cut: the file is longer than the limit"
            if extracted.truncated
            else None,
        )
        self._queue_ack(pipe, d)
        await pipe.execute()
        log.info("file %s ready: %d chunks", fid, len(chunks))

    async def _update(self, fid: str, **fields: object) -> None:
        pipe = self.redis.pipeline(transaction=False)
        self.files.queue_update(pipe, fid, **fields)
        await pipe.execute()

    async def _fail(self, d: ReceivedJob, reason: str, *, dead: bool = False) -> None:
        pipe = self.redis.pipeline(transaction=False)
        self.files.queue_update(pipe, d.job.file_id, status="failed", reason=reason)
        if dead:
            letter = IngestDeadLetter(
                job=d.job, error=reason, deliveries=d.deliveries, entry_id=d.entry_id
            )
            queue_ingest_dead(pipe, self.keys, letter, d.pool)
        self._queue_ack(pipe, d)
        await pipe.execute()

    async def reject_malformed(self, pool: str, entry_id: str, fields: dict[str, str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        letter = IngestDeadLetter(
            job=None,
            error="not an ingestion job",
            deliveries=1,
            entry_id=entry_id,
            raw=str(fields)[:10_000],
        )
        queue_ingest_dead(pipe, self.keys, letter, pool)
        pipe.xack(self.lanes.stream(pool), self.lanes.group, entry_id)
        await pipe.execute()


def _resume_from(record: FileRecord, total: int) -> int:
    """Where an earlier delivery stopped: its last whole step, if it cut the
    same text into the same chunks (extraction is deterministic)."""
    if record.chunks_total != total or record.chunks_done <= 0:
        return 0
    return min(record.chunks_done - record.chunks_done % EMBED_BATCH, total)
