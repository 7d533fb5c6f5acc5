"""Stop requests: how a running turn learns, within milliseconds, that its
user pressed Stop.

The gateway writes ``cancel(turn_id)`` (value: the requesting user, with a
TTL) and publishes ``turn_id user_id`` on the cancel channel. Every worker
listens on that channel with one connection and sets the event of the turn
it runs; the key covers turns that had not started yet (checked when a turn
starts) and a worker that was briefly disconnected from pub/sub. A stop only
counts when it comes from the turn's own user.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Watch:
    user_id: str
    event: asyncio.Event = field(default_factory=asyncio.Event)


class CancelWatcher:
    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._watches: dict[str, _Watch] = {}
        self.connected = asyncio.Event()

    def watch(self, turn_id: str, user_id: str) -> asyncio.Event:
        """The event set when this turn's user asks to stop it."""
        w = self._watches.get(turn_id)
        if w is None:
            w = self._watches[turn_id] = _Watch(user_id)
        return w.event

    def unwatch(self, turn_id: str) -> None:
        self._watches.pop(turn_id, None)

    def request(self, turn_id: str, user_id: str) -> None:
        w = self._watches.get(turn_id)
        if w is not None and w.user_id == user_id:
            w.event.set()

    async def run(self) -> None:
        """Listen until cancelled, resubscribing after connection loss."""
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self.connected.set()
                backoff = 0.1
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    turn_id, _, user_id = str(msg["data"]).partition(" ")
                    self.request(turn_id, user_id)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.connected.clear()
                log.warning("cancel channel lost (%s); resubscribing in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.connected.clear()
                # redis-py leaves PubSub.aclose unannotated (its typed alias,
                # reset(), is deprecated and warns).
                await pubsub.aclose()  # type: ignore[no-untyped-call]
