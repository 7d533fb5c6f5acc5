"""50 files indexed by 3 ingestion worker processes while a random one is
SIGKILLed every ~1.5 s and a new one started: every file ends ready, with
exactly its chunks in the index (a takeover continues, never duplicates),
nothing left pending and nothing dead-lettered."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from shared.files import FileStore
from shared.keys import INGEST_GROUP, Keys
from tests.support.stack import running_stack
from worker.documents.index import count_chunks

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FILES = 50
KILLERS_S = 1.5
CHAOS_LIMIT_S = 60.0
ENV = {
    # The plumbing is under test, not ranking: the hash embedder is instant,
    # so reading (a child process per file) is where kills land.
    "TIDECHAT_EMBEDDER": "hash",
    "TIDECHAT_CLAIM_IDLE_SECONDS": "2",
}


def text_file(i: int) -> bytes:
    # ~30 chunks each: two steps of 16, so a kill can fall between them.
    return " ".join(f"file{i}word{j}" for j in range(30 * 120)).encode()


async def test_killed_ingestion_workers_leave_every_file_ready_once(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    rng = random.Random(14)
    with running_stack(redis_url, tmp_path / "stack", workers=1, env=ENV) as stack:
        ingesters = [stack.start_ingest() for _ in range(3)]
        token = stack.signup("chaos-docs")
        ids: list[str] = []
        with stack.client(token) as http:
            for i in range(FILES):
                r = http.post(
                    "/api/files", files={"file": (f"f{i}.txt", text_file(i), "text/plain")}
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])

        keys = Keys("tc:")
        store = FileStore(redis, keys)
        kills = 0
        start = time.monotonic()
        while time.monotonic() - start < CHAOS_LIMIT_S:
            records = await store.many(ids)
            if all(r is not None and r.status in ("ready", "failed") for r in records):
                break
            await asyncio.sleep(KILLERS_S * rng.uniform(0.5, 1.5))
            victim = rng.choice([p for p in ingesters if p.alive()])
            victim.signal(signal.SIGKILL)
            victim.popen.wait()
            kills += 1
            ingesters.remove(victim)
            ingesters.append(stack.start_ingest())

        deadline = time.monotonic() + 120
        while True:
            records = await store.many(ids)
            if all(r is not None and r.status in ("ready", "failed") for r in records):
                break
            assert time.monotonic() < deadline, [r.status for r in records if r]
            await asyncio.sleep(0.5)

        assert kills >= 3, "the files were indexed before the chaos began"
        for record in records:
            assert record is not None
            assert record.status == "ready", (record.name, record.reason)
            indexed = await count_chunks(redis, keys, owner=record.owner, file_id=record.id)
            assert indexed == record.chunks_total == record.chunks_done, record.name
        pending = await redis.xpending(keys.ingest(), INGEST_GROUP)
        assert pending["pending"] == 0
        assert await redis.xlen(keys.ingest_dead()) == 0
        print(f"\n{FILES} files, {kills} ingestion workers killed: all ready, no duplicate chunk")
        assert httpx.get(stack.url + "/health").status_code == 200
