"""The session hub on a Redis Cluster node (the tests' one-node cluster):
its streams are in many hash slots, which one XREAD cannot cover there
(CROSSSLOT), so it reads them per slot (``gateway/hub_reads.py``). On a
plain Redis it keeps one XREAD for all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from gateway.hub import SessionHub
from gateway.hub_reads import by_slot, is_cluster_node
from shared.redis_client import make_redis
from tests.gateway.test_hub import take
from tests.support.keys import KEYS
from tests.support.sessions import emit


@pytest.fixture
async def cluster_hub(cluster_redis_url: str) -> AsyncIterator[tuple[SessionHub, Redis]]:
    redis = make_redis(cluster_redis_url)
    reader = make_redis(cluster_redis_url, block_ms=10_000, max_connections=1)
    hub = SessionHub(reader, redis, KEYS, gateway_id="c1", session_ttl=60, buffer_bytes=16_384)
    await hub.start()
    try:
        yield hub, redis
    finally:
        await hub.stop()
        await reader.aclose()
        await redis.aclose()


async def test_sessions_in_many_slots_each_get_their_events(
    cluster_hub: tuple[SessionHub, Redis],
) -> None:
    hub, redis = cluster_hub
    sessions = [f"clusterS{i}" for i in range(6)]
    assert len({key_slot(KEYS.session(s).encode()) for s in sessions}) > 1
    subs = [await hub.subscribe(s, None) for s in sessions]
    for round_ in range(3):
        for s in sessions:
            await emit(redis, s, f"{s}-{round_}")
    for s, sub in zip(sessions, subs, strict=True):
        got = await take(sub, 3)
        assert [f'"chunk":"{s}-{i}"' in d.frame for i, d in enumerate(got)] == [True] * 3
    # A subscriber that joins later (the reader blocked on its wake stream) is
    # woken for, and still gets its events.
    late = await hub.subscribe("clusterLate", None)
    await asyncio.sleep(0)
    await emit(redis, "clusterLate", "hello")
    assert '"chunk":"hello"' in (await take(late, 1))[0].frame
    assert hub.healthy


async def test_a_plain_redis_is_read_with_one_xread(redis: Redis, redis_url: str) -> None:
    if await is_cluster_node(redis):
        pytest.skip("the session's Redis is a cluster node (TIDECHAT_TEST_REDIS=cluster)")
    reader = make_redis(redis_url, block_ms=10_000, max_connections=1)
    hub = SessionHub(reader, redis, KEYS, gateway_id="p1", session_ttl=60, buffer_bytes=16_384)
    await hub.start()
    try:
        for s in ("plainA", "plainB", "plainC"):
            await hub.subscribe(s, None)
        before = await _xread_calls(redis)
        await asyncio.sleep(0.3)  # idle: the reader stays blocked in one XREAD
        assert await _xread_calls(redis) - before <= 1
    finally:
        await hub.stop()
        await reader.aclose()


def test_streams_are_grouped_by_slot() -> None:
    streams = {"a:{x}": "0-0", "b:{x}": "1-0", "c:{y}": "0-0"}
    groups = by_slot(streams)
    assert sorted(sorted(g) for g in groups) == [["a:{x}", "b:{x}"], ["c:{y}"]]


async def _xread_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))
