"""Keeping a pool's streams healthy: what every worker does besides running
turns. Each function is one round of a periodic duty (or of shutdown), with
its Redis client, key names and consumer passed in."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import StreamIdT

from shared.fairness import FairLines
from shared.keys import Keys
from shared.streams import parse_stream_id
from worker.lanes import Lanes


def _lanes(keys: Keys, lanes: Lanes | None) -> Lanes:
    return lanes or Lanes.turns(keys)


log = logging.getLogger(__name__)

#: What a periodic duty survives: Redis away for a while, or NOGROUP (the read
#: loop recreates the group); the next round tries again.
DUTY_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, ResponseError)


def every(
    interval: float, name: str, duty: Callable[[], Awaitable[None]], *, at_once: bool = False
) -> asyncio.Task[None]:
    """A background task running ``duty`` every ``interval`` seconds (first
    at once, or after one interval); a failure in ``DUTY_ERRORS`` is logged
    and the next round tries again."""

    async def loop() -> None:
        if not at_once:
            await asyncio.sleep(interval)
        while True:
            try:
                await duty()
            except DUTY_ERRORS as exc:
                log.warning("%s failed: %s", name, exc)
            await asyncio.sleep(interval)

    return asyncio.create_task(loop(), name=name)


#: Idle time (ms) given to entries handed back on shutdown: far past any claim
#: threshold, so the next claim loop of another worker takes them at once.
HANDBACK_IDLE_MS = 24 * 3600 * 1000


async def heartbeat(
    redis: Redis,
    keys: Keys,
    consumer: str,
    running: dict[str, list[str]],
    scan: int,
    lanes: Lanes | None = None,
) -> None:
    """Say this worker is alive (for ``/ready``), and refresh the idle time of
    the entries it is generating, so nobody takes them over.

    ``running``: entry ids in flight, by pool (every served pool is a key).
    Only entries still this worker's are refreshed: one another worker has
    taken over (this one was frozen past the threshold) is not stolen back.
    """
    lane = _lanes(keys, lanes)
    now_ms = int(time.time() * 1000)
    pipe = redis.pipeline(transaction=False)
    for pool in running:
        pipe.zadd(lane.workers(pool), {consumer: now_ms})
        pipe.zremrangebyscore(lane.workers(pool), "-inf", now_ms - 3600_000)
    busy = [pool for pool, ids in running.items() if ids]
    for pool in busy:
        pipe.xpending_range(
            lane.stream(pool), lane.group, min="-", max="+", count=scan, consumername=consumer
        )
    results = await pipe.execute()
    pending = results[2 * len(running) :]
    refresh = redis.pipeline(transaction=False)
    todo = False
    for pool, rows in zip(busy, pending, strict=True):
        ours = {row["message_id"] for row in rows}
        ids: list[StreamIdT] = [eid for eid in running[pool] if eid in ours]
        if ids:
            todo = True
            refresh.xclaim(lane.stream(pool), lane.group, consumer, 0, ids, justid=True)
    if todo:
        await refresh.execute()


async def trim(redis: Redis, keys: Keys, pool: str, lanes: Lanes | None = None) -> int:
    """Drop the acknowledged turns at the head of a prompt stream; return how
    many went.

    XTRIM MINID ~ up to the older of the oldest pending entry and the group's
    last-delivered id: everything before both has been read and acknowledged,
    so no pending entry (a takeover needs its fields) and no undelivered one
    is ever trimmed. One stuck pending entry holds the trim back, until it is
    taken over and acknowledged or dead-lettered. Every worker does it (it is
    idempotent); periodic, not per turn.
    """
    lane = _lanes(keys, lanes)
    key = lane.stream(pool)
    pipe = redis.pipeline(transaction=False)
    pipe.xinfo_groups(key)
    pipe.xpending(key, lane.group)
    groups, pending = await pipe.execute(raise_on_error=False)
    if isinstance(groups, Exception) or isinstance(pending, Exception):
        return 0  # no stream or no group yet: nothing to trim
    floor = next((str(g["last-delivered-id"]) for g in groups if g["name"] == lane.group), "0-0")
    if pending["pending"] and parse_stream_id(str(pending["min"])) < parse_stream_id(floor):
        floor = str(pending["min"])
    if floor == "0-0":
        return 0
    return int(await redis.xtrim(key, minid=floor, approximate=True))


async def hand_back(
    redis: Redis, keys: Keys, consumer: str, pools: list[str], lanes: Lanes | None = None
) -> int:
    """Mark every entry still pending to ``consumer`` as long idle, so the next
    claim loop of another worker takes it at once (Redis Streams have no
    "unclaim"; idle time is what a claim looks at). Returns how many."""
    lane = _lanes(keys, lanes)
    handed = 0
    for pool in pools:
        key = lane.stream(pool)
        rows = await redis.xpending_range(
            key, lane.group, min="-", max="+", count=10_000, consumername=consumer
        )
        ids: list[StreamIdT] = [row["message_id"] for row in rows]
        if ids:
            await redis.xclaim(
                key, lane.group, consumer, 0, ids, idle=HANDBACK_IDLE_MS, justid=True
            )
            handed += len(ids)
    return handed


async def repair_lines(fair: FairLines, pool: str, per_user: int) -> tuple[int, int]:
    """Give back slots lost outside a finish and move stalled lines on
    (``FairLines.repair``); returns (slots given back, turns moved)."""
    lost, moved = await fair.repair(pool, per_user)
    if lost or moved:
        log.info(
            "fair lines of %s: %d lost slot(s) given back, %d waiting turn(s) moved on",
            pool,
            lost,
            moved,
        )
    return lost, moved
