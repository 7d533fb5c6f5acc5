"""A Redis without JSON or the query engine is caught where an operator
looks: the gateway and the worker refuse to start and say what to install,
``/ready`` says it with a reason, and the probe stays inside the deployment's
key prefix. (``tidechat up``'s own check: tests/cli/test_up.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from shared.keys import Keys
from shared.redis_client import make_redis
from shared.redis_features import JSON, QUERY_ENGINE, missing_features
from tests.support.redis_servers import PartialRedis
from tests.support.stack import OPERATOR, new_stack, running_stack
from tidechat.local_redis import LocalRedis, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def json_only(tmp_path: Path) -> Iterator[PartialRedis]:
    """Redis 8 with RedisJSON but no query engine (a Redis 7.0 + rejson.so,
    as tidechat ran on before, is the same to tidechat)."""
    server = PartialRedis(tmp_path / "json-only", persistence=False, keep=("rejson.so",))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[PartialRedis]:
    server = PartialRedis(tmp_path / "plain", persistence=False)
    server.start()
    yield server
    server.stop()


async def probe(url: str, keys: Keys) -> list[str]:
    client = make_redis(url)
    try:
        return await missing_features(client, keys)
    finally:
        await client.aclose()


async def test_what_a_server_lacks_is_named(
    redis_url: str, json_only: PartialRedis, plain: PartialRedis, keys: Keys
) -> None:
    assert await probe(redis_url, keys) == []
    assert await probe(json_only.url, keys) == [QUERY_ENGINE]
    assert await probe(plain.url, keys) == [JSON, QUERY_ENGINE]


async def test_the_probe_stays_under_the_key_prefix(redis: Redis, redis_url: str) -> None:
    """A Redis user confined by ACL to its deployment's keys (``app:*``) can
    run the checks: the probe key carries the configured prefix."""
    await redis.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "app", "on", ">app secret", "~app:*", "+@all", "-@dangerous"
    )
    confined = make_redis(redis_url.replace("redis://", "redis://app:app%20secret@"))
    try:
        assert await missing_features(confined, Keys("app:")) == []
    finally:
        await confined.aclose()
        await redis.execute_command("ACL", "DELUSER", "app")  # type: ignore[no-untyped-call]


def test_a_gateway_on_a_redis_without_the_query_engine_exits_saying_what_to_install(
    json_only: PartialRedis, tmp_path: Path
) -> None:
    stack = new_stack(json_only.url, tmp_path / "stack")
    gateway = stack.start_gateway()
    try:
        assert gateway.popen.wait(60) == 3
    finally:
        stack.stop()
    log = gateway.log.read_text()
    assert "lacks the query engine (FT.* commands)" in log
    assert "redis:8" in log


def test_a_worker_on_a_plain_redis_exits_saying_what_to_install(
    plain: PartialRedis, tmp_path: Path
) -> None:
    stack = new_stack(plain.url, tmp_path / "stack")
    worker = stack.start_worker()
    try:
        assert worker.popen.wait(60) == 2
    finally:
        stack.stop()
    log = worker.log.read_text()
    assert "lacks the JSON data type (JSON.* commands) and the query engine" in log


async def test_a_worker_started_before_its_redis_waits_for_it(tmp_path: Path, keys: Keys) -> None:
    port = free_port()
    server = LocalRedis(tmp_path / "redis", port=port, persistence=False)
    stack = new_stack(server.url, tmp_path / "stack")
    worker = stack.start_worker()
    try:
        deadline = time.monotonic() + 60
        while "Redis unreachable" not in worker.log.read_text():
            assert worker.alive(), worker.log.read_text()
            assert time.monotonic() < deadline, worker.log.read_text()
            await asyncio.sleep(0.05)
        server.start()
        client = make_redis(server.url)
        try:
            while not await client.zcard(keys.workers("default")):
                assert worker.alive(), worker.log.read_text()
                assert time.monotonic() < deadline, worker.log.read_text()
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
    finally:
        stack.stop()
        server.stop()


def test_ready_names_what_a_replaced_redis_lacks(tmp_path: Path) -> None:
    """The gateway started on a complete Redis; an operator swaps it for one
    without the query engine: ``/ready`` turns 503 and says what to install."""
    port = free_port()
    full = LocalRedis(tmp_path / "full", port=port, persistence=False)
    full.start()
    replaced = PartialRedis(tmp_path / "partial", port=port, persistence=False, keep=("rejson.so",))
    try:
        with running_stack(full.url, tmp_path / "stack", workers=1) as stack:
            ready = httpx.get(stack.url + "/ready", headers=OPERATOR).json()
            assert (ready["json_module"], ready["query_engine"]) == ("ok", "ok")
            assert "reason" not in ready
            full.stop()
            replaced.start()
            deadline = time.monotonic() + 60
            while True:
                r = httpx.get(stack.url + "/ready", headers=OPERATOR, timeout=10)
                body = r.json()
                if body.get("query_engine") == "missing":
                    break
                assert time.monotonic() < deadline, body
                time.sleep(0.1)
            assert r.status_code == 503 and body["ready"] is False
            assert body["json_module"] == "ok"
            assert "lacks the query engine" in body["reason"]
            assert "redis:8" in body["reason"]
            # Anyone may learn why, in words that name no host or figure.
            anonymous = httpx.get(stack.url + "/ready", timeout=10).json()
            assert anonymous["ready"] is False
            assert any("lacks the query engine" in why for why in anonymous["reasons"])
    finally:
        replaced.stop()
        full.stop()
