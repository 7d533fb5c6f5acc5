"""Fixtures for the gateway's unit tests: a running session hub on the test Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.hub import SessionHub
from shared.redis_client import make_redis
from tests.support.keys import KEYS


@pytest.fixture
def hub_session_ttl() -> int:
    """Seconds a session stream outlives its last reader; a test module
    overrides this fixture to watch expiry happen."""
    return 60


@pytest.fixture
async def hub(redis: Redis, redis_url: str, hub_session_ttl: int) -> AsyncIterator[SessionHub]:
    reader = make_redis(redis_url, block_ms=10_000, max_connections=1, client_name="hub-reader")
    h = SessionHub(
        reader, redis, KEYS, gateway_id="test", session_ttl=hub_session_ttl, buffer_bytes=16_384
    )
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
        await reader.aclose()
