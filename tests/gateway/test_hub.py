"""The multiplexed session reader against a real Redis."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from gateway.hub import SessionHub
from gateway.subscriber import OutgoingEvent, Subscriber
from tests.support.sessions import emit


async def take(sub: Subscriber, n: int) -> list[OutgoingEvent]:
    out = []
    async with asyncio.timeout(5):
        while len(out) < n:
            item = await sub.next()
            assert isinstance(item, OutgoingEvent)
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
    assert b.pending == 0


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
    assert live.pending == 0


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


async def test_a_subscriber_that_does_not_read_holds_one_budget_then_catches_up(
    hub: SessionHub, redis: Redis
) -> None:
    """Events wait in Redis, not in the gateway: a client that stops reading
    (or resumes from far back) costs at most about one budget of memory, and
    gets every event, in order, once it reads again."""
    sub = await hub.subscribe("sessionEE", None)
    for i in range(400):  # ~100 bytes each: 40 KB against a 16 KB budget
        await emit(redis, "sessionEE", f"x{i:03d}")
    async with asyncio.timeout(5):
        while not sub.paused:
            await asyncio.sleep(0.01)
    assert sub.queued_bytes < 16_384 + 200
    got = await take(sub, 400)
    assert [d.frame.split('"chunk":"')[1][:4] for d in got] == [f"x{i:03d}" for i in range(400)]
    assert not sub.overflowed


async def test_a_resume_replaces_what_was_queued(hub: SessionHub, redis: Redis) -> None:
    ids = [await emit(redis, "sessionRR", f"r{i}") for i in range(50)]
    sub = await hub.subscribe("sessionRR", "0-0")
    async with asyncio.timeout(5):
        while sub.pending < 50:
            await asyncio.sleep(0.01)
    sub.say('{"type":"pong"}')
    for _ in range(20):  # a client resuming over and over does not multiply its queue
        await hub.reposition(sub, ids[44])
    assert sub.pending == 1  # the pong stays; the events are read again
    got = [await sub.next() for _ in range(6)]
    assert got[0] == '{"type":"pong"}'
    assert [d.frame.split('"chunk":"')[1][:3] for d in got[1:] if isinstance(d, OutgoingEvent)] == [
        f"r{i}" for i in range(45, 50)
    ]


async def test_direct_frames_left_unread_past_twice_the_budget_close_the_subscriber(
    hub: SessionHub,
) -> None:
    sub = await hub.subscribe("sessionPP", None)
    pong = '{"type":"pong"}'
    for _ in range(3_000):  # 45 KB of pongs nobody reads
        sub.say(pong)
    assert sub.overflowed and sub.pending == 1
    assert await sub.next() is None
