"""The one multiplexed reader of a gateway process.

Every socket (and every ``POST /api/chat`` stream) of this process subscribes
to its session stream here; one task reads all of them with a single
blocking XREAD on one dedicated connection (on a Redis Cluster node, one
per hash slot: ``gateway/hub_reads.py``) and hands each event to its
subscribers' queues. So the Redis connections a gateway holds do not grow
with its sockets, and an idle gateway costs Redis one blocked read.

When the set of watched streams changes (a socket joins, or resumes from an
older point) the reader must re-issue its XREAD: the subscriber writes to a
small per-process wake stream that the blocked XREAD also watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.hub_reads import is_cluster_node, read_streams
from gateway.security.sessions import queue_session_ttl
from gateway.subscriber import Kind, OutgoingEvent, Subscriber
from shared.aio import cancel_and_wait
from shared.keys import (
    FIELD_DATA,
    FIELD_SESSION,
    FIELD_TYPE,
    Keys,
)
from shared.streams import (
    StreamEntries,
    StreamId,
    frame_with_event_id,
    frame_with_feed_id,
    parse_stream_id,
)

log = logging.getLogger(__name__)


class SessionHub:
    def __init__(
        self,
        reader: Redis,
        redis: Redis,
        keys: Keys,
        *,
        gateway_id: str,
        session_ttl: int,
        buffer_bytes: int,
    ) -> None:
        self._reader = reader
        self._redis = redis
        self._keys = keys
        self._wake_key = keys.gateway_wake(gateway_id)
        self._wake_cursor = "$"
        self._session_ttl = session_ttl
        self._buffer_bytes = buffer_bytes
        self._subs: dict[str, set[Subscriber]] = {}
        #: Where the reader continues each stream: the oldest point any of its
        #: subscribers still needs.
        self._cursors: dict[str, StreamId] = {}
        self._task: asyncio.Task[None] | None = None
        self._ttl_task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.events_read = 0
        #: A cluster node: one XREAD per hash slot (``gateway/hub_reads.py``).
        self._per_slot = False

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    async def start(self) -> None:
        # The wake stream's cursor must be concrete before the first XREAD so a
        # wake written between two reads is not skipped.
        last = cast(StreamEntries | None, await self._redis.xrevrange(self._wake_key, count=1))
        self._wake_cursor = last[0][0] if last else "0-0"
        self._per_slot = await is_cluster_node(self._redis)
        self._task = asyncio.create_task(self._run(), name="session-hub")
        self._ttl_task = asyncio.create_task(self._refresh_ttls(), name="session-ttl")

    async def stop(self) -> None:
        for task in (self._task, self._ttl_task):
            if task is not None:
                await cancel_and_wait(task)
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            await self._redis.delete(self._wake_key)

    async def subscribe(
        self, session_id: str, after: str | None, ready: asyncio.Event | None = None
    ) -> Subscriber:
        """Deliver the session's events after ``after`` (an event id), or from
        the live end when ``after`` is None."""
        return await self._subscribe(self._keys.session(session_id), session_id, after, ready)

    async def subscribe_feed(
        self, user_id: str, after: str | None, ready: asyncio.Event | None = None
    ) -> Subscriber:
        """Deliver the user's feed (``shared/streams.py: FeedEvent``) after
        ``after`` (a ``feed_id``), or from the live end. The caller is that
        user: the key is built from the signed-in user's id."""
        key = self._keys.user_feed(user_id)
        return await self._subscribe(key, user_id, after, ready, kind="feed")

    async def follow(
        self, session_id: str, after: str, turn_id: str, ready: asyncio.Event | None = None
    ) -> Subscriber:
        """Deliver one turn's events from another session stream, after
        ``after``. The caller has checked that the session belongs to its
        user (``SessionOwners.owns``)."""
        key = self._keys.session(session_id)
        match = '"turn_id":"' + turn_id + '"'
        return await self._subscribe(key, session_id, after, ready, kind="follow", match=match)

    async def _subscribe(
        self,
        key: str,
        session_id: str,
        after: str | None,
        ready: asyncio.Event | None,
        *,
        kind: Kind = "session",
        match: str | None = None,
    ) -> Subscriber:
        if after is None:
            last = cast(StreamEntries | None, await self._redis.xrevrange(key, count=1))
            after = last[0][0] if last else "0-0"
        sub = Subscriber(
            session_id,
            key,
            parse_stream_id(after),
            self._buffer_bytes,
            on_drained=self._catch_up,
            kind=kind,
            match=match,
        )
        if ready is not None:
            sub.share_ready(ready)
        self._subs.setdefault(key, set()).add(sub)
        try:
            await self._watch_from(key, sub.cursor)
        except BaseException:
            self.unsubscribe(sub)  # the caller never gets it to unsubscribe
            raise
        return sub

    async def reposition(self, sub: Subscriber, after: str) -> None:
        """Replay from another point (a ``resume`` that is not the first
        frame), in place of whatever was still queued."""
        sub.rewind(parse_stream_id(after))
        await self._watch_from(sub.key, sub.cursor)

    async def _catch_up(self, sub: Subscriber) -> None:
        """A paused subscriber drained: read on from where it stopped."""
        if sub not in self._subs.get(sub.key, ()):
            return  # unsubscribed meanwhile
        try:
            await self._watch_from(sub.key, sub.cursor)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # The cursor is lowered already: the reader's next round (at most
            # READER_BLOCK_MS away) starts there, woken or not.
            log.warning("could not wake the session reader: %s", exc)

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.key)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.key]
            self._cursors.pop(sub.key, None)

    async def _watch_from(self, key: str, cursor: StreamId) -> None:
        current = self._cursors.get(key)
        if current is not None and current <= cursor:
            return
        self._cursors[key] = cursor
        # Interrupt the blocked XREAD so it picks up the new stream or cursor.
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(self._wake_key, {"w": "1"}, maxlen=16, approximate=True)
        pipe.expire(self._wake_key, 3600)
        await pipe.execute()

    @property
    def healthy(self) -> bool:
        """The reader is running and its connection answers."""
        return self.connected.is_set() and self._task is not None and not self._task.done()

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not self.connected.is_set():
                # Know the connection works before a read that may block long.
                try:
                    await self._reader.ping()
                except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                    log.warning(
                        "session reader cannot reach Redis (%s); retrying in %.2fs", exc, backoff
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                self.connected.set()
            streams: dict[str, str] = {self._wake_key: self._wake_cursor}
            for key, (ms, seq) in self._cursors.items():
                streams[key] = f"{ms}-{seq}"
            try:
                response = await read_streams(
                    self._reader, self._wake_key, streams, per_slot=self._per_slot
                )
                self.connected.set()
                backoff = 0.05
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.connected.clear()
                log.warning("session reader lost Redis (%s); retrying in %.2fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except Exception:
                # The one reader of every socket here must not die of a bad
                # reply; it logs, waits and reads again.
                log.exception("session reader failed; reading again in %.2fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            for key, entries in response:
                if not entries:
                    continue  # a stream created empty also ends a blocked XREAD
                if key == self._wake_key:
                    self._wake_cursor = entries[-1][0]
                    continue
                self._dispatch(key, parse_stream_id(streams[key]), entries)

    def _dispatch(
        self, key: str, read_from: StreamId, entries: list[tuple[str, dict[str, str]]]
    ) -> None:
        """Hand the entries of one read to the subscribers it covers.

        A subscriber that joined from an older point while this read was in
        flight is not covered (it has not seen what lies between): it gets
        its events, in order, from the next read, which starts at its point.
        """
        subs = self._subs.get(key)
        if not subs:
            return
        covered = [sub for sub in subs if sub.cursor >= read_from]
        for event_id, fields in entries:
            position = parse_stream_id(event_id)
            data = fields[FIELD_DATA]
            items: dict[Kind, OutgoingEvent] = {}
            for sub in covered:
                if position <= sub.cursor or sub.paused or sub.overflowed:
                    continue
                if sub.match is not None and sub.match not in data:
                    sub.cursor = position  # another turn's event: skipped
                    continue
                item = items.get(sub.kind)
                if item is None:
                    item = items[sub.kind] = _item(sub.kind, event_id, fields, data)
                if sub.offer(item):
                    sub.cursor = position
        self.events_read += len(entries)
        current = self._cursors.get(key)
        if current is not None and current >= read_from:
            self._cursors[key] = max(current, parse_stream_id(entries[-1][0]))

    async def _refresh_ttls(self) -> None:
        """Keep the session streams (and their owner records) of connected
        clients alive."""
        interval = max(self._session_ttl / 3, 1)
        while True:
            await asyncio.sleep(interval)
            sessions = {
                sub.session_id
                for subs in self._subs.values()
                for sub in subs
                if sub.kind == "session"
            }
            if not sessions:
                continue
            try:
                pipe = self._redis.pipeline(transaction=False)
                for session_id in sessions:
                    queue_session_ttl(pipe, self._keys, session_id, self._session_ttl)
                await pipe.execute()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("could not refresh session TTLs: %s", exc)


def _item(kind: Kind, event_id: str, fields: dict[str, str], data: str) -> OutgoingEvent:
    """An entry as a subscriber of ``kind`` sends it: a session event with its
    ``event_id``, a feed event with its ``feed_id`` (and, kept apart, the
    session of the turn it announces), a followed turn's event as stored."""
    kind_type = fields.get(FIELD_TYPE, "")
    if kind == "session":
        return OutgoingEvent(event_id, kind_type, frame_with_event_id(event_id, data))
    if kind == "feed":
        frame = frame_with_feed_id(event_id, data)
        return OutgoingEvent(event_id, kind_type, frame, fields.get(FIELD_SESSION))
    return OutgoingEvent(event_id, kind_type, data)
