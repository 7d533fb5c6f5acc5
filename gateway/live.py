"""Live sync: what one socket hears beyond its own session stream.

Every tab has its own session stream (its resume guarantees hang on it).
What the user's *other* tabs and devices do reaches it two ways, without
writing anything twice:

- the user's feed (``Keys.user_feed``): conversations created, renamed,
  deleted, and ``turn_started`` for every accepted turn, with the session
  stream that carries the turn stored beside the event;
- following that session stream for one turn: when the socket ``watch``es
  the conversation a turn runs in, the gateway reads the other session's
  stream from just before the turn was announced, filtered to that turn's
  events (the worker wrote them once; every gateway with a follower reads
  them with the XREAD it does anyway), until its ``stream_end``.

Every read checks the owner: the feed key is the signed-in user's own; a
followed session must be owned by the same user (``SessionOwners.owns``);
the conversation a ``watch`` names must be theirs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import KW_ONLY, dataclass, field
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.hub import SessionHub
from gateway.security.sessions import SessionOwners
from gateway.subscriber import OutgoingEvent, Subscriber
from shared.keys import (
    FIELD_DATA,
    FIELD_SESSION,
    FIELD_TYPE,
    FOLLOW_LOOKBACK,
    FOLLOW_MARGIN_MS,
    TURN_SLOT_TTL_S,
    Keys,
)
from shared.store import ConversationStore, NotFoundError
from shared.streams import StreamEntries, entry_ms

log = logging.getLogger(__name__)

#: The most turns of other tabs one socket follows at once (a user running
#: more at once in the one conversation on screen sees the rest when they end).
MAX_FOLLOWS = 8


def follow_from(feed_id: str) -> str:
    """Where to read a session stream for a turn announced at ``feed_id``."""
    return f"{max(entry_ms(feed_id) - FOLLOW_MARGIN_MS, 0)}-0"


@dataclass(eq=False)
class LiveSync:
    """One socket's feed subscription and the turns it follows."""

    redis: Redis
    hub: SessionHub
    owners: SessionOwners
    store: ConversationStore
    keys: Keys
    _: KW_ONLY
    user_id: str
    session_id: str
    #: The socket's: set when any of its subscribers has something to send.
    ready: asyncio.Event
    feed: Subscriber | None = field(default=None, init=False)
    #: turn id -> its subscriber
    follows: dict[str, Subscriber] = field(default_factory=dict, init=False)
    watching: str | None = field(default=None, init=False)

    async def start(self, feed_after: str | None) -> Subscriber:
        self.feed = await self.hub.subscribe_feed(self.user_id, feed_after, self.ready)
        return self.feed

    async def reposition(self, feed_after: str) -> None:
        if self.feed is not None:
            await self.hub.reposition(self.feed, feed_after)

    def subscribers(self) -> list[Subscriber]:
        feed = [] if self.feed is None else [self.feed]
        return feed + list(self.follows.values())

    def close(self) -> None:
        if self.feed is not None:
            self.hub.unsubscribe(self.feed)
            self.feed = None
        self._drop_follows()

    def _drop_follows(self) -> None:
        for sub in self.follows.values():
            self.hub.unsubscribe(sub)
        self.follows.clear()

    async def watch(self, conversation_id: str | None) -> None:
        """The socket shows ``conversation_id`` now: follow the turns other
        sessions run in it, those already running included."""
        if conversation_id == self.watching:
            return
        self.watching = conversation_id
        self._drop_follows()
        if conversation_id is None:
            return
        entries = cast(
            StreamEntries,
            await self.redis.xrevrange(self.keys.user_feed(self.user_id), count=FOLLOW_LOOKBACK),
        )
        # A turn older than its slot's lifetime is over, whatever happened to it.
        cutoff = entry_ms(entries[0][0]) - TURN_SLOT_TTL_S * 1000 if entries else 0
        for feed_id, fields in reversed(entries):
            if entry_ms(feed_id) < cutoff or fields.get(FIELD_TYPE) != "turn_started":
                continue
            turn = _turn_of(fields.get(FIELD_DATA, ""))
            if turn is None or turn[0] != conversation_id or turn[1] in self.follows:
                continue
            if await self._reply_stored(conversation_id, turn[1]):
                continue  # over: the conversation the client loads has it
            await self._follow(fields.get(FIELD_SESSION), turn[1], feed_id)

    async def _reply_stored(self, conversation_id: str, turn_id: str) -> bool:
        try:
            head = await self.store.owned_head(conversation_id, self.user_id, turn_id)
        except NotFoundError:
            return True  # not theirs, or gone: nothing to follow
        return head.message_exists

    async def sent(self, sub: Subscriber, item: OutgoingEvent) -> None:
        """After the socket sent ``item``: a feed's ``turn_started`` in the
        watched conversation starts a follow; a followed turn's
        ``stream_end`` ends it; a deletion of the watched one ends them all."""
        if sub.kind == "follow":
            if item.type == "stream_end":
                for turn_id, follow in list(self.follows.items()):
                    if follow is sub:
                        del self.follows[turn_id]
                self.hub.unsubscribe(sub)
            return
        if item.type == "conversation_deleted" and self.watching is not None:
            if f'"conversation_id":"{self.watching}"' in item.frame:
                self.watching = None
                self._drop_follows()
            return
        if item.type != "turn_started" or self.watching is None:
            return
        turn = _turn_of(item.frame)
        if turn is None or turn[0] != self.watching or turn[1] in self.follows:
            return
        await self._follow(item.session, turn[1], item.event_id)

    async def _follow(self, session_id: str | None, turn_id: str, feed_id: str) -> None:
        if session_id is None or session_id == self.session_id:
            return  # its own session brings it anyway
        if len(self.follows) >= MAX_FOLLOWS:
            return
        try:
            if not await self.owners.owns(session_id, self.user_id):
                log.warning("a feed named a session of another user; not followed")
                return
            sub = await self.hub.follow(session_id, follow_from(feed_id), turn_id, self.ready)
        except RedisError as exc:
            log.warning("could not follow a turn of another tab: %s", exc)
            return
        self.follows[turn_id] = sub


def _turn_of(data: str) -> tuple[str, str] | None:
    """(conversation id, turn id) of a ``turn_started`` event's JSON."""
    try:
        event = json.loads(data)
        return str(event["conversation_id"]), str(event["turn_id"])
    except (ValueError, KeyError, TypeError):
        return None
