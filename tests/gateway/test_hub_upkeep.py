"""The multiplexed reader's upkeep against a real Redis: session TTLs kept
fresh while a socket follows them, odd streams and failed subscriptions
that must not cost the other sockets anything."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.hub import SessionHub
from gateway.subscriber import OutgoingEvent, Subscriber
from shared.redis_client import make_redis
from tests.support.keys import KEYS
from tests.support.sessions import emit
from tidechat.local_redis import free_port


@pytest.fixture
def hub_session_ttl() -> int:
    return 3  # short: these tests watch a session expire


async def reader_blocked(redis: Redis) -> None:
    """Until the hub's reader waits in its XREAD."""
    async with asyncio.timeout(5):
        while True:
            clients = await redis.client_list()
            if any(c["name"] == "hub-reader" and "b" in c["flags"] for c in clients):
                return
            await asyncio.sleep(0.01)


async def next_chunk(sub: Subscriber) -> str:
    item = await asyncio.wait_for(sub.next(), 5)
    assert isinstance(item, OutgoingEvent)
    return item.frame


async def test_a_followed_session_outlives_its_ttl(hub: SessionHub, redis: Redis) -> None:
    await emit(redis, "sessionTT", "hello")
    await redis.expire(KEYS.session("sessionTT"), 3)
    await hub.subscribe("sessionTT", "0-0")
    await asyncio.sleep(4.5)  # past the TTL: only the hub's refresh keeps it
    assert 0 < await redis.ttl(KEYS.session("sessionTT")) <= 3


async def test_a_stream_created_empty_does_not_stop_the_reader(
    hub: SessionHub, redis: Redis
) -> None:
    empty = await hub.subscribe("sessionE1", None)
    other = await hub.subscribe("sessionE2", None)
    # what a regeneration does for a session without a stream: a blocked
    # XREAD wakes up with no entries for it
    await reader_blocked(redis)
    await redis.xadd(
        KEYS.session("sessionE1"), {"t": "open"}, id="0-1", maxlen=0, approximate=False
    )
    await emit(redis, "sessionE2", "still reading")
    assert '"still reading"' in await next_chunk(other)
    await emit(redis, "sessionE1", "after the empty start")
    assert '"after the empty start"' in await next_chunk(empty)


async def test_a_subscription_that_failed_leaves_nothing_behind(redis_url: str) -> None:
    reader = make_redis(redis_url, block_ms=10_000, max_connections=1)
    gone = make_redis(f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there
    hub = SessionHub(reader, gone, KEYS, gateway_id="gone", session_ttl=60, buffer_bytes=16_384)
    try:
        with pytest.raises(RedisConnectionError):
            await hub.subscribe("sessionF1", "0-0")
        assert hub.subscriber_count == 0
    finally:
        await gone.aclose()
        await reader.aclose()
