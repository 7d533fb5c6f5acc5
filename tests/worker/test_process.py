"""The lifecycle both kinds of worker share (``worker/process.py``): while a
worker runs, its pool's heartbeat set lists it (what ``/ready`` and
``tidechat streams`` count as live); stopped, it takes itself off at once
rather than lingering until its heartbeat goes stale."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from shared.keys import INGEST_POOL
from shared.redis_client import make_redis
from tests.worker.helpers import KEYS, running_worker, settings
from tests.worker.test_streams_upkeep import FAST
from worker.documents.embed import HashEmbedder
from worker.documents.pool import IngestWorker


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def test_a_turn_worker_is_listed_while_it_runs_and_taken_off_when_stopped(
    redis: Redis, redis_url: str
) -> None:
    workers = KEYS.workers("default")
    async with running_worker(redis, settings(redis_url), [FAST]) as worker:
        await until(lambda: redis.zscore(workers, worker.consumer))
    assert await redis.zscore(workers, worker.consumer) is None


async def test_an_ingestion_worker_is_listed_while_it_runs_and_taken_off_when_stopped(
    redis: Redis, redis_url: str
) -> None:
    raw = make_redis(redis_url, decode_responses=False)
    workers = KEYS.ingest_workers(INGEST_POOL)
    worker = IngestWorker(redis, raw, settings(redis_url), HashEmbedder(64), consumer="ingest-t")
    task = asyncio.create_task(worker.run())
    try:
        await until(lambda: redis.zscore(workers, "ingest-t"))
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    finally:
        task.cancel()
        await raw.aclose()
    assert await redis.zscore(workers, "ingest-t") is None
