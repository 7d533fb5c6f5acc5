"""Chaos fixtures: a Redis of the test's own (AOF on, restartable on the same
port and data directory), a client for the test to read Redis with, and a
live stack to fuzz (one per test module)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared.redis_client import make_redis
from tests.chaos.live import Target, open_target
from tests.support.redis_servers import redis_kind
from tests.support.stack import SCRIPTED_FAST, Stack, running_stack
from tidechat.local_redis import LocalRedis, free_port


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A redis-server with AOF ``everysec`` (as ``tidechat up`` runs it) that
    the test may stop and start again: ``server.stop(); server.start()``."""
    server = redis_kind()(tmp_path / "redis", port=free_port(), appendfsync="everysec")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """The session Redis, flushed once before the test (the stack's data must
    then survive the test's own reads)."""
    client = make_redis(redis_url)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def fuzz_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        redis_url, tmp_path_factory.mktemp("fuzz"), models=SCRIPTED_FAST, workers=1
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def target(fuzz_stack: Stack) -> Iterator[Target]:
    with open_target(fuzz_stack) as t:
        yield t
