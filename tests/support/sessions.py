"""Putting events on a session stream as a worker would, for tests that
read them (the hub, subscribers)."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.protocol import StreamChunkEvent
from shared.streams import queue_session_event
from tests.support.keys import KEYS


async def emit(redis: Redis, session: str, text: str) -> str:
    """A chunk on the session's stream (creating it, as a gateway does); its id."""
    event = StreamChunkEvent(turn_id="t", chunk=text)
    return str(await queue_session_event(redis, KEYS, session, event, create=True))
