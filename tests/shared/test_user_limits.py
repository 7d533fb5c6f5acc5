"""Per-user turn limits and usage counters, on real Redis (the Lua scripts
are what gateways and workers share)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from shared.keys import TURN_SLOT_TTL_S, USAGE_TTL_S, Keys
from shared.user_limits import (
    LimitExceeded,
    TurnLimits,
    UsageRecorder,
    UserLimits,
    seconds_to_next_day,
)

#: 2030-01-02 12:00:00 UTC
NOON = datetime(2030, 1, 2, 12, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, t: float = NOON) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def release(recorder: UsageRecorder, redis: Redis, uid: str, turn: str, **usage: int) -> int:
    pipe = redis.pipeline(transaction=False)
    recorder.queue_release(
        pipe, uid, turn, usage.get("model", "m"), usage.get("prompt", 0), usage.get("completion", 0)
    )
    (result,) = await pipe.execute()
    return int(result)


async def test_turns_per_minute_is_a_sliding_window(redis: Redis, keys: Keys) -> None:
    clock = Clock()
    limits = UserLimits(redis, keys, TurnLimits(per_minute=3), clock=clock)
    for n in range(3):
        await limits.acquire("u1", f"t{n}")
        clock.t += 10
    with pytest.raises(LimitExceeded) as refused:
        await limits.acquire("u1", "t3")
    assert refused.value.kind == "rate"
    assert refused.value.retry_after == 30  # the first turn leaves the window at +60 s
    await limits.acquire("u2", "other")  # another user is not affected
    clock.t += 30
    await limits.acquire("u1", "t3")


async def test_concurrent_turns_until_a_worker_releases_one(redis: Redis, keys: Keys) -> None:
    clock = Clock()
    limits = UserLimits(redis, keys, TurnLimits(max_concurrent=2), clock=clock)
    recorder = UsageRecorder(keys, clock=clock)
    await limits.acquire("u1", "a")
    await limits.acquire("u1", "b")
    with pytest.raises(LimitExceeded) as refused:
        await limits.acquire("u1", "c")
    assert refused.value.kind == "concurrent" and refused.value.retry_after >= 1
    assert await release(recorder, redis, "u1", "a", prompt=10, completion=5) == 1
    await limits.acquire("u1", "c")


async def test_a_lost_release_frees_the_slot_at_its_deadline(redis: Redis, keys: Keys) -> None:
    clock = Clock()
    limits = UserLimits(redis, keys, TurnLimits(max_concurrent=1), clock=clock)
    await limits.acquire("u1", "lost")
    with pytest.raises(LimitExceeded):
        await limits.acquire("u1", "next")
    clock.t += TURN_SLOT_TTL_S - 1
    with pytest.raises(LimitExceeded):
        await limits.acquire("u1", "next")
    clock.t += 2
    await limits.acquire("u1", "next")
    # The set expires with its last slot: nothing is left behind for idle users.
    ttl = await redis.pttl(keys.user_turns("u1"))
    assert 0 < ttl <= TURN_SLOT_TTL_S * 1000


async def test_the_daily_budget_counts_usage_and_renews_at_midnight_utc(
    redis: Redis, keys: Keys
) -> None:
    clock = Clock()
    limits = UserLimits(redis, keys, TurnLimits(daily_token_budget=1000), clock=clock)
    recorder = UsageRecorder(keys, clock=clock)
    await limits.acquire("u1", "t1")
    await release(recorder, redis, "u1", "t1", model="big", prompt=700, completion=200)
    await limits.acquire("u1", "t2")  # 900 used: under the budget, so it may run...
    await release(recorder, redis, "u1", "t2", model="small", prompt=100, completion=50)
    with pytest.raises(LimitExceeded) as refused:  # ...and the next one may not
        await limits.acquire("u1", "t3")
    assert refused.value.kind == "budget"
    assert refused.value.retry_after == 12 * 3600 == seconds_to_next_day(clock.t)
    assert "midnight UTC" in refused.value.message
    clock.t += 12 * 3600
    await limits.acquire("u1", "t3")
    usage = await redis.hgetall(keys.user_usage("u1", "2030-01-02"))
    assert usage == {
        "turns:big": "1",
        "prompt:big": "700",
        "completion:big": "200",
        "turns:small": "1",
        "prompt:small": "100",
        "completion:small": "50",
        # The day's first quota refusal is marked (the audit log gets one line).
        "hit:tokens": "1",
    }
    ttl = await redis.ttl(keys.user_usage("u1", "2030-01-02"))
    assert USAGE_TTL_S - 5 < ttl <= USAGE_TTL_S


async def test_a_turn_finished_twice_is_counted_once(redis: Redis, keys: Keys) -> None:
    limits = UserLimits(redis, keys, TurnLimits(max_concurrent=1))
    recorder = UsageRecorder(keys)
    await limits.acquire("u1", "t")
    assert await release(recorder, redis, "u1", "t", prompt=10, completion=10) == 1
    assert await release(recorder, redis, "u1", "t", prompt=10, completion=10) == 0
    day = await redis.keys(keys.user_usage("u1", "*"))
    assert len(day) == 1
    usage = await redis.hgetall(day[0])
    assert usage == {"turns:m": "1", "prompt:m": "10", "completion:m": "10"}


async def test_forget_gives_back_the_slot_and_the_minute(redis: Redis, keys: Keys) -> None:
    limits = UserLimits(redis, keys, TurnLimits(per_minute=1, max_concurrent=1))
    await limits.acquire("u1", "dup")
    await limits.forget("u1", "dup")
    await limits.acquire("u1", "real")


async def test_two_gateways_racing_for_the_last_slot_let_one_through(
    redis: Redis, keys: Keys
) -> None:
    gateways = [UserLimits(redis, keys, TurnLimits(max_concurrent=3)) for _ in range(2)]
    results = await asyncio.gather(
        *(gateways[n % 2].acquire("u1", f"t{n}") for n in range(20)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 3
    assert all(isinstance(r, LimitExceeded) for r in results if r is not None)


async def test_limits_of_zero_are_off_but_turns_are_still_counted(redis: Redis, keys: Keys) -> None:
    limits = UserLimits(redis, keys, TurnLimits())
    recorder = UsageRecorder(keys)
    for n in range(50):
        await limits.acquire("u1", f"t{n}")
    assert await release(recorder, redis, "u1", "t7", completion=3) == 1
    assert await redis.zcard(keys.user_turns("u1")) == 49
    assert not await redis.exists(keys.user_recent_turns("u1"))  # no minute kept when off


def test_the_keys_of_one_user_share_a_hash_tag(keys: Keys) -> None:
    tags = {
        k[k.index("{") : k.index("}") + 1]
        for k in (
            keys.user_turns("abc"),
            keys.user_recent_turns("abc"),
            keys.user_usage("abc", "2030-01-02"),
            keys.signins("abc"),
        )
    }
    assert tags == {"{abc}"}
