"""The hub's live-sync subscribers against the real server: a user's feed
(frames carry ``feed_id``, never ``event_id``) and one turn followed on
another session's stream (only that turn's entries, as stored), all waking
one sender through a shared event."""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis

from gateway.hub import SessionHub
from gateway.subscriber import OutgoingEvent, Subscriber, next_of
from shared.protocol import StreamChunkEvent, TurnStartedEvent
from shared.streams import queue_feed_event, queue_session_event
from tests.support.keys import KEYS


async def chunk(redis: Redis, session: str, turn: str, text: str) -> str:
    event = StreamChunkEvent(turn_id=turn, chunk=text)
    return str(await queue_session_event(redis, KEYS, session, event, create=True))


async def test_a_follow_gets_only_its_turn_and_no_event_ids(hub: SessionHub, redis: Redis) -> None:
    before = await chunk(redis, "tabA0001", "turnX", "before")
    follow = await hub.follow("tabA0001", before, "turnX")
    await chunk(redis, "tabA0001", "turnY", 'not "turn_id":"turnX" this one')
    await chunk(redis, "tabA0001", "turnX", "one")
    await chunk(redis, "tabA0001", "turnY", "other")
    await chunk(redis, "tabA0001", "turnX", "two")
    got: list[dict[str, object]] = []
    async with asyncio.timeout(5):
        while len(got) < 2:
            item = await follow.next()
            assert isinstance(item, OutgoingEvent)
            got.append(json.loads(item.frame))
    assert [f["chunk"] for f in got] == ["one", "two"]
    assert all("event_id" not in f and "feed_id" not in f for f in got)
    assert follow.pending == 0


async def test_feed_and_follows_wake_one_sender(hub: SessionHub, redis: Redis) -> None:
    ready = asyncio.Event()
    own = await hub.subscribe("tabB0001", None, ready)
    feed = await hub.subscribe_feed("userB", None, ready)
    subs: list[Subscriber] = [own, feed]
    pipe = redis.pipeline(transaction=False)
    started = TurnStartedEvent(turn_id="turnZ", conversation_id="c1", title="t", updated_at=1)
    queue_feed_event(pipe, KEYS, "userB", started, session_id="tabA0002")
    await pipe.execute()
    async with asyncio.timeout(5):
        sub, item = await next_of(lambda: subs, ready)
    assert sub is feed and isinstance(item, OutgoingEvent)
    assert item.session == "tabA0002"  # beside the event, for the gateway only
    frame = json.loads(item.frame)
    assert frame["feed_id"] == item.event_id and "tabA0002" not in item.frame
    # A follow added while the sender waits is seen on its next wake-up.
    waiting = asyncio.create_task(next_of(lambda: subs, ready))
    await asyncio.sleep(0)
    follow = await hub.follow("tabA0002", "0-0", "turnZ", ready)
    subs.append(follow)
    await chunk(redis, "tabA0002", "turnZ", "hello")
    async with asyncio.timeout(5):
        sub, item = await waiting
    assert sub is follow and isinstance(item, OutgoingEvent) and '"hello"' in item.frame
