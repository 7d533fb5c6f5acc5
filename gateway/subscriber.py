"""One reader of one session stream (a socket, or a ``POST /api/chat``
stream) as the multiplexed reader (``gateway/hub.py``) feeds it: the items
to send, in order, bounded in bytes."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from shared.streams import StreamId

#: What a subscriber reads: its socket's own session stream (frames carry
#: ``event_id``), its user's feed (``feed_id``), or one turn of another
#: session of the same user (neither: the client's resume points stay put).
Kind = Literal["session", "feed", "follow"]


@dataclass(slots=True, eq=False)
class OutgoingEvent:
    """A session event read from its stream, ready to send: the frame is the
    stored JSON with its ``event_id`` spliced in."""

    event_id: str
    type: str
    frame: str
    #: A feed's ``turn_started``: the session stream that carries the turn.
    session: str | None = None


#: What a subscriber's queue holds: session events, frames the socket
#: handler sends directly (plain strings), and ``None``: close, the client
#: let direct frames pile up past twice the budget.
Item = OutgoingEvent | str | None


def _size(item: Item) -> int:
    if item is None:
        return 0
    return len(item.frame if isinstance(item, OutgoingEvent) else item)


@dataclass(eq=False)
class Subscriber:
    """One reader of one session stream from a given point on, with a send
    queue bounded in bytes (counted as characters of JSON).

    Session events are *paced*: once ``budget`` bytes wait to be sent, the
    hub stops handing this subscriber events (they stay in Redis, where they
    live anyway) and its cursor stays put; when the sender has taken the
    queue down to half the budget, the hub reads on from the cursor. So a
    slow client (or a ``resume`` from far back) holds at most about one
    budget here, however long the session. Frames sent directly (``pong``,
    errors about bad frames) cannot wait in Redis: past twice the budget the
    subscriber is closed (``None``), and the client reconnects and resumes.
    """

    session_id: str
    key: str
    cursor: StreamId
    budget: int
    _items: deque[Item] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: Bytes waiting in the queue.
    queued_bytes: int = 0
    #: Events are held back until the sender catches up.
    paused: bool = False
    overflowed: bool = False
    #: The hub's way to read on from ``cursor`` once a paused subscriber drains.
    on_drained: Callable[[Subscriber], Awaitable[None]] | None = None
    kind: Kind = "session"
    #: ``follow``: only entries whose JSON contains this (the turn's id as a
    #: JSON field: quotes inside message text are escaped, so text never
    #: matches) are delivered; the others are skipped.
    match: str | None = None

    def _push(self, item: Item) -> None:
        self._items.append(item)
        self.queued_bytes += _size(item)
        self._ready.set()

    def offer(self, item: OutgoingEvent) -> bool:
        """Queue a session event; False when paused (it is read again later)."""
        if self.paused or self.overflowed:
            return False
        self._push(item)
        if self.queued_bytes >= self.budget:
            self.paused = True
        return True

    def say(self, frame: str) -> None:
        """Queue a frame that is not a session event (it has no place in Redis)."""
        if self.overflowed:
            return
        if self.queued_bytes + len(frame) > 2 * self.budget:
            self.overflowed = True
            self._items.clear()
            self.queued_bytes = 0
            self._push(None)
            return
        self._push(frame)

    def rewind(self, cursor: StreamId) -> None:
        """Deliver from ``cursor`` again: the events still queued are dropped
        (a ``resume`` replaces what was pending instead of adding to it)."""
        kept = [item for item in self._items if not isinstance(item, OutgoingEvent)]
        self._items = deque(kept)
        self.queued_bytes = sum(_size(item) for item in kept)
        self.cursor = cursor
        self.paused = False

    @property
    def pending(self) -> int:
        """Items waiting to be sent."""
        return len(self._items)

    async def wait(self) -> None:
        """Until an item waits to be sent (safe to time out: nothing is taken)."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()

    def share_ready(self, ready: asyncio.Event) -> None:
        """Signal ``ready`` when an item arrives: one socket's sender waits on
        all of its subscribers at once (``next_of``)."""
        self._ready = ready
        if self._items:
            ready.set()

    async def next(self) -> Item:
        """The next item to send, in order; waits for one."""
        await self.wait()
        item = self._items.popleft()
        self.queued_bytes -= _size(item)
        if self.paused and self.queued_bytes <= self.budget // 2 and not self.overflowed:
            self.paused = False
            if self.on_drained is not None:
                await self.on_drained(self)
        return item


async def next_of(
    subs: Callable[[], list[Subscriber]], ready: asyncio.Event
) -> tuple[Subscriber, Item]:
    """The next item of whichever subscriber has one (earlier in ``subs()``
    first), for subscribers that ``share_ready(ready)``. ``subs`` is asked
    again after every wake-up: subscribers come and go while it waits."""
    while True:
        for sub in subs():
            if sub.pending:
                return sub, await sub.next()
        ready.clear()
        await ready.wait()
