"""Who holds which turns of a pool, and for how long: read by the gateway
(``/ready``, ``/metrics``) and by ``tidechat streams``, so an operator sees the
same facts in both places.

A consumer-group *consumer* is one worker process (``host-pid-rand``); Redis
keeps it, and the entries delivered to it but not yet acknowledged, after the
process is gone. A live worker refreshes the idle time of its own pending
entries every ``HEARTBEAT_S``, so an entry whose idle time keeps growing is
held by a worker that stopped: another worker takes it over once it is idle
past the claim threshold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.keys import WORKER_DEAD_AFTER_S, WORKER_GROUP, Keys
from shared.streams import entry_ms

#: Pending entries looked at per pool to find each consumer's longest-idle
#: one. The pending list is short in a healthy pool (at most the workers'
#: total concurrency); past this many, the figures come from the oldest ones.
PENDING_SAMPLE = 1_000


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """A turn delivered to a consumer and not acknowledged yet."""

    entry_id: str
    consumer: str
    #: Seconds since it was delivered or last refreshed by its worker.
    idle_seconds: float
    #: How many times it has been delivered (takeovers count).
    deliveries: int


@dataclass(slots=True)
class ConsumerPending:
    """One consumer holding pending entries."""

    name: str
    pending: int
    #: Seconds since the consumer last read or claimed (XINFO CONSUMERS ``idle``).
    seen_seconds_ago: float
    #: The longest idle time among its pending entries: what the claim loops compare
    #: to their threshold.
    max_idle_seconds: float = 0.0
    #: Its pending entries, oldest first (those within ``PENDING_SAMPLE``).
    entries: list[PendingEntry] = field(default_factory=list)


async def pending_by_consumer(
    redis: Redis, keys: Keys, pool: str, *, sample: int = PENDING_SAMPLE
) -> list[ConsumerPending]:
    """Consumers of ``pool`` with pending entries, most pending first.

    Consumers holding nothing are left out: Redis keeps one for every worker
    process that ever served the pool, and they matter to nobody.
    """
    stream = keys.prompts(pool)
    try:
        consumers: list[dict[str, Any]] = await redis.xinfo_consumers(stream, WORKER_GROUP)
    except ResponseError:  # no stream, or no worker has created the group yet
        return []
    holders = {
        str(c["name"]): ConsumerPending(
            name=str(c["name"]),
            pending=int(c.get("pending") or 0),
            seen_seconds_ago=int(c.get("idle") or 0) / 1000,
        )
        for c in consumers
        if int(c.get("pending") or 0) > 0
    }
    if not holders:
        return []
    rows = cast(
        list[dict[str, Any]],
        await redis.xpending_range(stream, WORKER_GROUP, "-", "+", sample),
    )
    for row in rows:
        holder = holders.get(str(row["consumer"]))
        if holder is None:  # acknowledged between the two commands
            continue
        entry = PendingEntry(
            entry_id=str(row["message_id"]),
            consumer=holder.name,
            idle_seconds=int(row["time_since_delivered"]) / 1000,
            deliveries=int(row["times_delivered"]),
        )
        holder.entries.append(entry)
        holder.max_idle_seconds = max(holder.max_idle_seconds, entry.idle_seconds)
    return sorted(holders.values(), key=lambda c: (-c.pending, c.name))


async def pool_lag(redis: Redis, keys: Keys, pool: str) -> tuple[int, int]:
    """(waiting, pending) of one pool: turns no worker has read yet (the
    consumer group's lag) and turns being generated (delivered, not
    acknowledged). Before any worker has joined, everything queued waits."""
    stream = keys.prompts(pool)
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    except ResponseError:  # no stream yet: nothing is waiting
        return 0, 0
    for group in groups:
        if group.get("name") == WORKER_GROUP:
            return int(group.get("lag") or 0), int(group.get("pending") or 0)
    return int(await redis.xlen(stream)), 0


async def pool_stats(redis: Redis, keys: Keys, pool: str) -> dict[str, Any]:
    """Queue depth (on the stream, waiting for a worker), turns waiting in
    users' lines and how many users they belong to, pending (being
    generated), oldest pending age, dead letters and takeovers of one pool:
    the headline figures of ``/ready``, ``/metrics`` and ``tidechat streams``."""
    queued, pending = await pool_lag(redis, keys, pool)
    stats: dict[str, Any] = {"queued": queued, "pending": pending, "oldest_pending_seconds": 0.0}
    if pending:
        oldest = cast(
            list[dict[str, Any]],
            await redis.xpending_range(keys.prompts(pool), WORKER_GROUP, "-", "+", 1),
        )
        if oldest:
            ms = entry_ms(str(oldest[0]["message_id"]))
            stats["oldest_pending_seconds"] = max(0.0, time.time() - ms / 1000)
    # Turns waiting in users' own lines (shared/fairness.py): queued too,
    # just not on the stream yet.
    pipe = redis.pipeline(transaction=False)
    pipe.hlen(keys.fair_waiting(pool))
    pipe.scard(keys.fair_lines(pool))
    waiting, waiting_users = await pipe.execute()
    stats["waiting"] = int(waiting)
    stats["waiting_users"] = int(waiting_users)
    stats["dead_letters"] = int(await redis.xlen(keys.dead(pool)))
    counters = cast(dict[str, str], await redis.hgetall(keys.metrics(pool)))
    stats["takeovers"] = int(counters.get("takeovers", 0))
    return stats


async def live_workers(
    redis: Redis, keys: Keys, pool: str, heartbeats: str | None = None
) -> dict[str, float]:
    """Workers of ``pool`` whose heartbeat is recent: name -> seconds since it.
    ``heartbeats``: another pool's sorted set (the ingestion workers')."""
    now_ms = time.time() * 1000
    rows = cast(
        list[tuple[str, float]],
        await redis.zrangebyscore(
            heartbeats or keys.workers(pool),
            now_ms - WORKER_DEAD_AFTER_S * 1000,
            "+inf",
            withscores=True,
        ),
    )
    return {str(name): max(0.0, (now_ms - score) / 1000) for name, score in rows}
