"""Documents: ingestion pages/s, retrieval latency at 100,000 chunks, recall@5.

    .venv/bin/python -m bench.documents [--pages 40] [--chunks 100000] [--facts 100]

On a Redis of its own (Redis 8 with the query engine, as ``tidechat up``
runs it), in-process (``IngestRunner`` and ``nearest`` as the workers use
them):

1. ingestion: a generated PDF of ``--pages`` pages (~150 words each) read,
   chunked, embedded by the bundled model and indexed; pages/s for the whole
   job and for reading alone;
2. retrieval: ``--chunks`` chunks with random unit vectors (384 floats)
   spread over 200 users of 50 files each, indexed by HNSW; then KNN queries
   of one user over 10 of their files, as a turn makes them: p50 and p95;
3. recall@5: ``--facts`` passages from ``bench/embedders.py`` (one made-up
   fact each, among filler), indexed with the bundled model, one question per
   fact asked in other words; the share of questions whose passage is among
   the 5 returned.

The figures in docs/documents.md come from here.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.embedders import make_set
from bench.harness import pct
from shared.conversation import new_id, now
from shared.files import FileRecord, FileStore
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.streams import IngestJob
from tests.support.documents import make_pdf
from tidechat.local_redis import LocalRedis
from worker.documents.embed import LocalEmbedder
from worker.documents.extract import ExtractLimits, extract
from worker.documents.index import ensure_index, nearest, queue_chunk
from worker.documents.ingest import IngestRunner, ReceivedJob

WORDS = [
    *("harbour", "ferry", "timetable", "committee", "budget", "lantern", "signal"),
    *("tide", "beacon", "pier", "schedule", "cargo", "manifest", "weather", "report"),
    *("crew", "rota", "maintenance", "engine", "deck"),
]


def page_text(rng: np.random.Generator, words: int = 150) -> list[str]:
    picked = rng.choice(WORDS, size=words)
    return [" ".join(picked[i : i + 12]) for i in range(0, words, 12)]


async def ingestion(url: str, keys: Keys, pages: int) -> None:
    rng = np.random.default_rng(1)
    pdf = make_pdf([page_text(rng) for _ in range(pages)])
    start = time.perf_counter()
    extracted = await extract("pdf", "application/pdf", pdf, ExtractLimits())
    read_s = time.perf_counter() - start
    redis = make_redis(url)
    raw = make_redis(url, decode_responses=False)
    embedder = LocalEmbedder()
    await embedder.embed(["warm up"])  # loading the model is not ingestion
    record = FileRecord(
        id=new_id(), owner="bench", name="bench.pdf", kind="pdf", mime="application/pdf",
        size=len(pdf), status="queued", created_at=now(),
    )  # fmt: skip
    await FileStore(redis, keys).create(record, pdf)
    runner = IngestRunner(redis, raw, keys, embedder, ExtractLimits(), max_deliveries=5)
    job = ReceivedJob("documents", "0-1", IngestJob(file_id=record.id, user_id="bench"))
    start = time.perf_counter()
    await runner.run(job)
    total_s = time.perf_counter() - start
    done = await FileStore(redis, keys).get(record.id)
    assert done is not None
    assert done.status == "ready", done
    print(
        f"ingestion: {pages} pages, {done.chunks_total} chunks: reading {pages / read_s:,.0f} "
        f"pages/s; read+chunk+embed+index {pages / total_s:,.1f} pages/s "
        f"({done.chunks_total / total_s:,.1f} chunks/s)"
    )
    assert len(extracted.pages) == pages
    await redis.aclose()
    await raw.aclose()


async def retrieval(url: str, keys: Keys, chunks: int) -> None:
    redis = make_redis(url)
    await ensure_index(redis, keys, 384)
    rng = np.random.default_rng(2)
    users, files_per_user = 200, 50
    per_file = max(chunks // (users * files_per_user), 1)
    start = time.perf_counter()
    n = 0
    for u in range(users):
        pipe = redis.pipeline(transaction=False)
        vecs = rng.standard_normal((files_per_user * per_file, 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        for f in range(files_per_user):
            for c in range(per_file):
                queue_chunk(
                    pipe, keys, file_id=f"u{u}f{f}", owner=f"user{u}", n=c, page=1,
                    text="x", vector=vecs[f * per_file + c],
                )  # fmt: skip
                n += 1
        await pipe.execute()
    while True:
        info = await redis.ft(keys.chunk_index()).info()  # type: ignore[no-untyped-call]
        if int(info["indexing"]) == 0 and int(info["num_docs"]) >= n:
            break
        await asyncio.sleep(0.5)
    load_s = time.perf_counter() - start
    timings = []
    for q in range(300):
        u = q % users
        files = [f"u{u}f{f}" for f in rng.choice(files_per_user, 10, replace=False)]
        vector = rng.standard_normal(384).astype(np.float32)
        t = time.perf_counter()
        found = await nearest(redis, keys, owner=f"user{u}", file_ids=files, vector=vector, k=8)
        timings.append((time.perf_counter() - t) * 1000)
        assert found
        assert all(p.file_id in files for p in found)
    print(
        f"retrieval: {n:,} chunks (written and indexed in {load_s:,.0f} s); KNN k=8 over one "
        f"user's 10 files: p50 {pct(timings, 50):.1f} ms, p95 {pct(timings, 95):.1f} ms"
    )
    await redis.aclose()


async def recall(url: str, keys: Keys, facts: int) -> None:
    redis = make_redis(url)
    passages, questions = make_set(facts)
    embedder = LocalEmbedder()
    vecs = np.concatenate(
        [await embedder.embed(passages[i : i + 16]) for i in range(0, len(passages), 16)]
    )
    await ensure_index(redis, keys, 384)
    pipe = redis.pipeline(transaction=False)
    for i, (text, vector) in enumerate(zip(passages, vecs, strict=True)):
        queue_chunk(pipe, keys, file_id="facts", owner="r", n=i, page=0, text=text, vector=vector)
    await pipe.execute()
    qv = await embedder.embed(questions)
    hits = 0
    for i, vector in enumerate(qv):
        found = await nearest(redis, keys, owner="r", file_ids=["facts"], vector=vector, k=5)
        hits += any(p.n == i for p in found)
    print(f"recall@5: {hits / facts:.2f} ({facts} questions, all-MiniLM-L6-v2, HNSW)")
    await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--facts", type=int, default=100)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-docs-"))
    server = LocalRedis(workdir / "redis", persistence=False)
    server.start()
    try:
        await ingestion(server.url, Keys("b1:"), args.pages)
        await recall(server.url, Keys("b2:"), args.facts)
        await retrieval(server.url, Keys("b3:"), args.chunks)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
