"""End-to-end fixtures: a real gateway (uvicorn) and two worker processes
over real sockets, against the session's real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from shared.redis_client import make_redis
from tests.support.stack import Stack, running_stack

MODELS = """
[[models]]
id = "scripted"
label = "Scripted (fast)"
backend = "scripted"
reply_tokens = 64
tokens_per_second = 0

[[models]]
id = "slow"
label = "Scripted (slow)"
backend = "scripted"
reply_tokens = 200
tokens_per_second = 40
suggestions = [{ title = "Wait for it", prompt = "Tell me a long story." }]

[[models]]
id = "flaky"
backend = "scripted"
fail_on = "FAIL-BACKEND"
fail_status = 400
suggestions = []
"""


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(redis_url, tmp_path_factory.mktemp("stack"), models=MODELS) as s:
        yield s


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client that does not flush: the stack's data must survive."""
    client = make_redis(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"
