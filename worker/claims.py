"""Taking over turns whose worker went silent, so a turn outlives the
process that was generating it.

Every ``claim_interval_seconds`` each worker looks at the pending entries of
its pools that have been idle past ``claim_idle_seconds`` (a live worker
refreshes the idle time of its own every heartbeat: see ``upkeep``) and
claims as many as it has free slots, with XCLAIM's idle threshold repeated
so two workers never both take one. It never claims a turn it is running
itself (a heartbeat a little late is no reason to start it again here).
``XPENDING IDLE`` then ``XCLAIM`` rather than XAUTOCLAIM: the delivery
count of each entry is known before it is claimed, which the dead-letter
rule below needs.

A turn on one of its last two tries runs as the only such turn on its worker
(``running.last_tries``), so a turn that kills its workers is dead-lettered
alone. When every slot is busy, or the claim filled them all, a claim is
*owed*: the read loop gives the next free slot to a takeover, so abandoned
turns are not starved by new ones while the queue stays long.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.keys import Keys
from shared.streams import StreamEntries
from worker.config import WorkerSettings
from worker.lanes import Lanes
from worker.running import Entry, RunningTurns, StartEntry, last_tries

log = logging.getLogger(__name__)

#: Why a client sees ``stream_restart`` after a takeover.
TAKEOVER_REASON = "the worker generating this reply stopped; starting again"


@dataclass(eq=False)
class Claims:
    redis: Redis
    keys: Keys
    settings: WorkerSettings
    consumer: str
    pools: list[str]
    running: RunningTurns
    start: StartEntry
    lanes: Lanes
    takeovers: int = field(default=0, init=False)
    #: See the module docstring; the read loop checks and clears it.
    owed: bool = field(default=False, init=False)
    #: Where the next look at each pool's pending entries goes on from.
    _cursors: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self._cursors = dict.fromkeys(self.pools, "0-0")

    async def claim_all(self) -> None:
        try:
            for pool in self.pools:
                await self._claim(pool)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("claim loop: %s", exc)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise

    async def _claim(self, pool: str) -> None:
        free = self.running.free
        if free <= 0:
            self.owed = True
            return
        key = self.lanes.stream(pool)
        group = self.lanes.group
        idle_ms = int(self.settings.claim_idle_seconds * 1000)
        scan = free * 10
        # redis-py types both replies loosely, for every kind of client.
        rows = cast(
            list[dict[str, str]],
            await self.redis.xpending_range(
                key, group, min=self._cursors[pool], max="+", count=scan, idle=idle_ms
            ),
        )
        # The next pass goes on after the last entry looked at, or from the start.
        self._cursors[pool] = f"({rows[-1]['message_id']}" if len(rows) == scan else "0-0"
        suspects = self.running.suspects
        counts: dict[str, int] = {}
        for row in rows:
            if row["message_id"] in self.running:
                # This worker's own, still running: only its heartbeat was
                # late. Claiming it would start the turn a second time here.
                continue
            delivered = int(row["times_delivered"])
            if last_tries(delivered + 1, self.settings.max_deliveries):
                if suspects:
                    continue
                suspects += 1
            counts[row["message_id"]] = delivered + 1
            if len(counts) == free:
                self.owed = True  # more may be waiting
                break
        if not counts:
            return
        # XCLAIM with the threshold again: another worker may have been faster.
        claimed = cast(
            StreamEntries,
            await self.redis.xclaim(key, group, self.consumer, idle_ms, list(counts)),
        )
        entries = [(eid, fields) for eid, fields in claimed if fields is not None]
        if not entries:
            return
        self.takeovers += len(entries)
        await self.redis.hincrby(self.lanes.metrics(pool), "takeovers", len(entries))
        for entry_id, fields in entries:
            log.info("taking over %s on %s", entry_id, key)
            tries = counts.get(entry_id, 2)
            self.start(
                Entry(pool, entry_id, fields, deliveries=tries, restart_reason=TAKEOVER_REASON)
            )
