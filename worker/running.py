"""The turns one worker is running: what the read loop, the claim loop, the
heartbeat and shutdown all look at, kept in one place so none of them reaches
into another's state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Delivery:
    """A stream entry delivered to this consumer: just read (its first
    delivery), or taken over by the claim loop (``restart_reason`` says why
    the client sees a restart). What it carries is the subclass's."""

    pool: str
    entry_id: str
    deliveries: int = field(default=1, kw_only=True)
    restart_reason: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class Entry(Delivery):
    """A stream entry to start, its fields not decoded yet."""

    fields: dict[str, str]


#: Starts an entry (``ConsumerProcess._start``).
StartEntry = Callable[[Entry], None]


@dataclass(slots=True)
class Running:
    pool: str
    task: asyncio.Task[None]
    #: A takeover on one of the turn's last tries (see ``last_tries``).
    suspect: bool = False


def last_tries(deliveries: int, max_deliveries: int) -> bool:
    """Whether a delivery is one of the turn's last two tries before the dead
    letter. The turns whose workers died with it were taken over with it as
    often, so its last tries run as the only such turn on their worker: a
    turn that kills its workers is dead-lettered alone, not with the turns
    that happened to run beside it."""
    return max_deliveries - 1 <= deliveries <= max_deliveries


class RunningTurns:
    """Turns in flight by prompt-stream entry id, with a free-slot signal."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._running: dict[str, Running] = {}
        self._slot_free = asyncio.Event()

    def __len__(self) -> int:
        return len(self._running)

    def __iter__(self) -> Iterator[Running]:
        return iter(list(self._running.values()))

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._running

    @property
    def free(self) -> int:
        return self.concurrency - len(self._running)

    @property
    def suspects(self) -> int:
        return sum(r.suspect for r in self._running.values())

    def add(self, entry_id: str, running: Running) -> None:
        self._running[entry_id] = running
        running.task.add_done_callback(lambda _t: self._done(entry_id))

    def by_pool(self, pools: list[str]) -> dict[str, list[str]]:
        """Entry ids in flight by pool (every pool in ``pools`` is a key)."""
        out: dict[str, list[str]] = {pool: [] for pool in pools}
        for entry_id, running in self._running.items():
            out.setdefault(running.pool, []).append(entry_id)
        return out

    def wake(self) -> None:
        """Wake a reader waiting for a slot (shutting down)."""
        self._slot_free.set()

    async def wait_for_slot(self) -> None:
        self._slot_free.clear()
        if self.free <= 0:
            await self._slot_free.wait()

    def _done(self, entry_id: str) -> None:
        self._running.pop(entry_id, None)
        self._slot_free.set()
