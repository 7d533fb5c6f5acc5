"""Stop requests: how a running turn learns, within milliseconds, that its
user pressed Stop.

The gateway writes ``cancel(turn_id)`` (value: the requesting user, with a
TTL) and publishes ``turn_id user_id`` on the cancel channel
(``shared/stop_requests.py``). Every worker
listens on that channel with one connection and sets the event of the turn
it runs. A stop for a turn no worker has started yet is remembered by every
listening worker for the key's TTL, so whichever starts it sees the stop
without reading Redis. Only a turn queued before this worker's subscription
was last (re)established could have had its stop published unseen; for
those the worker reads the key. A stop only counts when it comes from the
turn's own user.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.keys import CANCEL_TTL_S
from shared.stop_requests import parse_stop_message

log = logging.getLogger(__name__)

#: Turns queued this long before the subscription started still get their
#: cancel key read, in case the gateway's clock runs ahead of the worker's.
CLOCK_SKEW_MARGIN_S = 5.0
#: Stops remembered for turns not started here (a stop costs ~200 bytes):
#: past this many the oldest are forgotten (their turns then read the key).
EARLY_MAX = 100_000


@dataclass(slots=True)
class _Watch:
    user_id: str
    event: asyncio.Event = field(default_factory=asyncio.Event)


class CancelWatcher:
    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._watches: dict[str, _Watch] = {}
        #: Stops for turns not (yet) running here: turn id -> (user, seen at
        #: (monotonic)), oldest first. Adding one and forgetting the expired or
        #: the excess at the old end is O(1) per stop: no rebuild, ever.
        self._early: OrderedDict[str, tuple[str, float]] = OrderedDict()
        #: Wall-clock time the current subscription started (None: not subscribed).
        self._since: float | None = None
        self.connected = asyncio.Event()

    def may_have_missed(self, queued_at: float) -> bool:
        """Whether a stop for a turn queued at ``queued_at`` (gateway clock)
        could have been published while this worker was not listening. The
        margin covers clock skew between machines."""
        return self._since is None or queued_at < self._since + CLOCK_SKEW_MARGIN_S

    def watch(self, turn_id: str, user_id: str) -> asyncio.Event:
        """The event set when this turn's user asks to stop it."""
        w = self._watches.get(turn_id)
        if w is None:
            w = self._watches[turn_id] = _Watch(user_id)
        early = self._early.pop(turn_id, None)
        fresh = early is not None and early[1] > time.monotonic() - CANCEL_TTL_S
        if fresh and early is not None and early[0] == user_id:
            w.event.set()
        return w.event

    def unwatch(self, turn_id: str) -> None:
        self._watches.pop(turn_id, None)

    def request(self, turn_id: str, user_id: str) -> None:
        w = self._watches.get(turn_id)
        if w is not None:
            if w.user_id == user_id:
                w.event.set()
            return
        now = time.monotonic()
        early = self._early
        early[turn_id] = (user_id, now)
        early.move_to_end(turn_id)
        cutoff = now - CANCEL_TTL_S
        while early:
            oldest = next(iter(early.values()))
            if len(early) <= EARLY_MAX and oldest[1] > cutoff:
                break
            early.popitem(last=False)

    @property
    def remembered(self) -> int:
        """Stops remembered for turns not running here."""
        return len(self._early)

    async def run(self) -> None:
        """Listen until cancelled, resubscribing after connection loss."""
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._since = time.time()
                self.connected.set()
                backoff = 0.1
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    turn_id, user_id = parse_stop_message(str(msg["data"]))
                    self.request(turn_id, user_id)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.connected.clear()
                log.warning("cancel channel lost (%s); resubscribing in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._since = None
                self.connected.clear()
                # redis-py leaves PubSub.aclose unannotated (its typed alias,
                # reset(), is deprecated and warns).
                await pubsub.aclose()  # type: ignore[no-untyped-call]
