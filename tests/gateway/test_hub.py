"""The multiplexed session reader against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.hub import Delivery, SessionHub, Subscriber
from shared.keys import Keys
from shared.protocol import StreamChunkEvent
from shared.redis_client import make_redis
from shared.streams import encode_event

KEYS = Keys("tc:")


@pytest.fixture
async def hub(redis: Redis, redis_url: str) -> AsyncIterator[SessionHub]:
    reader = make_redis(redis_url, block_ms=10_000, max_connections=1)
    h = SessionHub(reader, redis, KEYS, gateway_id="test", session_ttl=60, buffer_events=100)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
        await reader.aclose()


async def emit(redis: Redis, session: str, text: str) -> str:
    return str(
        await redis.xadd(
            KEYS.session(session), encode_event(StreamChunkEvent(turn_id="t", chunk=text))
        )
    )  # type: ignore[arg-type]


async def take(sub: Subscriber, n: int) -> list[Delivery]:
    out = []
    async with asyncio.timeout(5):
        while len(out) < n:
            item = await sub.queue.get()
            assert isinstance(item, Delivery)
            out.append(item)
    return out


async def test_each_subscriber_gets_its_own_session_in_order(hub: SessionHub, redis: Redis) -> None:
    a = await hub.subscribe("sessionAA", None)
    b = await hub.subscribe("sessionBB", None)
    for i in range(5):
        await emit(redis, "sessionAA", f"a{i}")
        await emit(redis, "sessionBB", f"b{i}")
    got_a = await take(a, 5)
    got_b = await take(b, 5)
    assert [d.frame.count('"a') for d in got_a] == [1] * 5
    assert [f'"chunk":"a{i}"' in d.frame for i, d in enumerate(got_a)] == [True] * 5
    assert all('"chunk":"b' in d.frame for d in got_b)
    assert b.queue.empty()


async def test_live_end_skips_history_and_resume_replays_it(hub: SessionHub, redis: Redis) -> None:
    first = await emit(redis, "sessionCC", "old1")
    await emit(redis, "sessionCC", "old2")
    live = await hub.subscribe("sessionCC", None)
    resumed = await hub.subscribe("sessionCC", first)
    await emit(redis, "sessionCC", "new")
    assert ['"old2"' in d.frame or '"new"' in d.frame for d in await take(resumed, 2)] == [
        True,
        True,
    ]
    got = await take(live, 1)
    assert '"new"' in got[0].frame
    assert live.queue.empty()


async def test_a_late_subscriber_from_an_old_point_loses_nothing(
    hub: SessionHub, redis: Redis
) -> None:
    ids = [await emit(redis, "sessionDD", f"e{i}") for i in range(20)]
    live = await hub.subscribe("sessionDD", None)
    writer_done = asyncio.Event()

    async def writer() -> None:
        for i in range(20, 60):
            await emit(redis, "sessionDD", f"e{i}")
        writer_done.set()

    task = asyncio.create_task(writer())
    late = await hub.subscribe("sessionDD", ids[4])  # joins while events flow
    await task
    got = await take(late, 55)
    assert [d.frame.split('"chunk":"')[1].split('"')[0] for d in got] == [
        f"e{i}" for i in range(5, 60)
    ]
    live_got = await take(live, 40)
    assert [d.frame.split('"chunk":"')[1].split('"')[0] for d in live_got] == [
        f"e{i}" for i in range(20, 60)
    ]


async def test_a_subscriber_that_falls_behind_is_told_to_reconnect(
    hub: SessionHub, redis: Redis
) -> None:
    sub = await hub.subscribe("sessionEE", None)
    for i in range(130):  # buffer is 100 and nobody reads
        await emit(redis, "sessionEE", f"x{i}")
    async with asyncio.timeout(5):
        while not sub.overflowed:
            await asyncio.sleep(0.01)
    items = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert items[-1] is None
