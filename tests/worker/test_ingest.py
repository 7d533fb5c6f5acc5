"""Ingestion on a real Redis with the query engine: files become indexed
chunks once, a worker that dies mid-file is taken over without duplicates,
hostile files fail with a reason and the worker goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from shared.conversation import new_id, now
from shared.files import FileRecord, FileStore
from shared.filetypes import sniff
from shared.keys import EMBED_BATCH, Keys
from shared.redis_client import make_redis
from tests.support.documents import (
    docx_bomb,
    encrypted_pdf,
    make_docx,
    make_pdf,
    many_pages_pdf,
)
from worker.config import WorkerSettings
from worker.documents.embed import HashEmbedder
from worker.documents.extract import ExtractError, ExtractLimits, extract
from worker.documents.index import count_chunks, nearest
from worker.documents.pool import IngestWorker

FILLER = "Quarterly figures were reviewed by the board and approved without changes. " * 12


@pytest.fixture
async def raw(redis_url: str, redis: Redis) -> AsyncIterator[Redis]:
    client = make_redis(redis_url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


def settings(redis_url: str, **extra: Any) -> WorkerSettings:
    return WorkerSettings(
        redis_url=redis_url, claim_idle_seconds=0.3, claim_interval_seconds=0.1, **extra
    )


async def add_file(redis: Redis, keys: Keys, owner: str, name: str, data: bytes) -> FileRecord:
    sniffed = sniff(data, name)
    assert sniffed is not None
    record = FileRecord(
        id=new_id(),
        owner=owner,
        name=name,
        kind=sniffed.kind,
        mime=sniffed.mime,
        size=len(data),
        status="queued",
        created_at=now(),
    )
    await FileStore(redis, keys).create(record, data)
    return record


async def run_burst(redis: Redis, raw: Redis, s: WorkerSettings, embedder: Any) -> IngestWorker:
    worker = IngestWorker(redis, raw, s, embedder, burst=True)
    await asyncio.wait_for(worker.run(), 60)
    return worker


async def test_a_pdf_becomes_cited_chunks_of_its_owner_only(
    redis: Redis, raw: Redis, redis_url: str, keys: Keys
) -> None:
    pdf = make_pdf([[FILLER], ["The vault combination is 7-31-15, said the janitor."]])
    record = await add_file(redis, keys, "alice", "report.pdf", pdf)
    embedder = HashEmbedder(64)
    await run_burst(redis, raw, settings(redis_url), embedder)

    stored = await FileStore(redis, keys).get(record.id)
    assert stored is not None
    assert stored.status == "ready", stored.reason
    assert stored.pages == 2
    assert (
        stored.chunks_done
        == stored.chunks_total
        == await count_chunks(redis, keys, owner="alice", file_id=record.id)
    )
    question = (await embedder.embed(["vault combination janitor"]))[0]
    found = await nearest(redis, keys, owner="alice", file_ids=[record.id], vector=question, k=1)
    assert found[0].page == 2 and "7-31-15" in found[0].text
    # Another user naming the same file id finds nothing: the owner is in the query.
    assert (
        await nearest(redis, keys, owner="mallory", file_ids=[record.id], vector=question, k=5)
        == []
    )


class HangsAfter:
    """An embedder that hangs after ``batches`` batches (so its worker can be
    killed mid-file); counts the batches it was asked for."""

    def __init__(self, batches: int | None) -> None:
        self.inner = HashEmbedder(64)
        self.name, self.dim = self.inner.name, self.inner.dim
        self.batches = batches
        self.calls = 0
        self.hung = asyncio.Event()
        self.release = asyncio.Event()

    async def embed(self, texts: list[str]) -> np.ndarray[Any, Any]:
        self.calls += 1
        if self.batches is not None and self.calls > self.batches and not self.release.is_set():
            self.hung.set()
            await self.release.wait()
        return await self.inner.embed(texts)


async def test_a_worker_dying_mid_file_is_taken_over_without_duplicate_chunks(
    redis: Redis, raw: Redis, redis_url: str, keys: Keys
) -> None:
    words = " ".join(f"w{i}" for i in range(120 * 40))  # ~40 chunks: 3 batches
    record = await add_file(redis, keys, "alice", "long.txt", words.encode())
    s = settings(redis_url)

    first = HangsAfter(1)
    dying = IngestWorker(redis, raw, s, first, consumer="dying")
    task = asyncio.create_task(dying.run())
    await asyncio.wait_for(first.hung.wait(), 60)
    task.cancel()  # killed mid-file: no drain, no hand-back
    store = FileStore(redis, keys)
    await asyncio.gather(task, return_exceptions=True)
    mid = await store.get(record.id)
    assert mid is not None and mid.status == "indexing" and mid.chunks_done == EMBED_BATCH

    second = HangsAfter(None)
    await run_burst(redis, raw, s, second)
    done = await store.get(record.id)
    assert done is not None and done.status == "ready"
    total = done.chunks_total
    assert total > 2 * EMBED_BATCH
    # It continued from the last whole step: the first batch was not embedded again.
    assert second.calls == -(-(total - EMBED_BATCH) // EMBED_BATCH)
    assert await count_chunks(redis, keys, owner="alice", file_id=record.id) == total
    pending = await redis.xpending(keys.ingest(), "ingesters")
    assert pending["pending"] == 0


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("bomb.docx", lambda: docx_bomb(300), "decompression bomb"),
        ("huge.pdf", lambda: many_pages_pdf(10_000), "10,000 pages"),
        ("locked.pdf", encrypted_pdf, "encrypted"),
        ("broken.pdf", lambda: b"%PDF-1.7\n" + b"\x00garbage" * 1000, "could not be read"),
    ],
)
async def test_a_hostile_file_fails_with_its_reason_and_the_next_file_is_read(
    redis: Redis, raw: Redis, redis_url: str, keys: Keys, name: str, make: Any, reason: str
) -> None:
    bad = await add_file(redis, keys, "alice", name, make())
    good = await add_file(redis, keys, "alice", "ok.docx", make_docx(["A normal file."]))
    await run_burst(redis, raw, settings(redis_url), HashEmbedder(64))
    store = FileStore(redis, keys)
    failed, ready = await store.get(bad.id), await store.get(good.id)
    assert failed is not None and failed.status == "failed"
    assert failed.reason is not None and reason in failed.reason
    assert ready is not None and ready.status == "ready"


async def test_reading_is_bounded_in_time(
    redis: Redis, raw: Redis, redis_url: str, keys: Keys
) -> None:
    slow = await add_file(redis, keys, "alice", "slow.pdf", many_pages_pdf(1_500))
    await run_burst(redis, raw, settings(redis_url, extract_timeout_seconds=0.3), HashEmbedder(64))
    got = await FileStore(redis, keys).get(slow.id)
    assert got is not None and got.status == "failed"
    assert got.reason is not None and "longer than" in got.reason


async def test_reading_is_bounded_in_memory() -> None:
    html = b"<html><body>" + b"<p>many words here</p>" * 250_000 + b"</body></html>"
    with pytest.raises(ExtractError, match="memory"):
        await extract("text", "text/html", html, ExtractLimits(memory_bytes=48 << 20))
    # The same file reads within the default bounds (cut at the text limit).
    done = await extract("text", "text/html", html, ExtractLimits(max_chars=20_000_000))
    assert done.pages[0].count("many words here") == 250_000 and not done.truncated


async def test_a_file_deleted_while_it_is_indexed_leaves_no_chunk_behind(
    redis: Redis, raw: Redis, redis_url: str, keys: Keys
) -> None:
    words = " ".join(f"w{i}" for i in range(120 * 40))
    record = await add_file(redis, keys, "alice", "long.txt", words.encode())
    embedder = HangsAfter(1)
    worker = IngestWorker(redis, raw, settings(redis_url), embedder, burst=True)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(embedder.hung.wait(), 60)
    store = FileStore(redis, keys)
    mid = await store.get(record.id)
    assert mid is not None
    assert mid.chunks_done == EMBED_BATCH
    await store.delete(mid)  # what DELETE /api/files/{id} does
    embedder.release.set()
    await asyncio.wait_for(task, 60)
    assert [k async for k in redis.scan_iter(match=keys.chunk(record.id, 0)[:-1] + "*")] == []
    assert not await redis.exists(keys.file(record.id))
    assert (await redis.xpending(keys.ingest(), "ingesters"))["pending"] == 0
