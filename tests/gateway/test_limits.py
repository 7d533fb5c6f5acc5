"""The gateway's side of the per-user turn limits (``gateway/limits.py``) on
real Redis: a refusal is a ``rate_limited`` API error with when to retry, and
a turn that was not queued after all gives its slot back."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.errors import ApiError
from gateway.limits import SessionTtl, TurnQuota
from shared.user_limits import TurnLimits
from tests.support.keys import KEYS


async def _queued(result: list[Exception | None] | None) -> list[Exception | None] | None:
    return result


async def _failing() -> list[Exception | None] | None:
    raise ConnectionError("redis went away")


async def test_the_limit_refuses_with_rate_limited_and_counts_the_refusal(redis: Redis) -> None:
    quota = TurnQuota(redis, KEYS, TurnLimits(max_concurrent=1))
    await quota.take("u1", "t1")
    with pytest.raises(ApiError) as caught:
        await quota.take("u1", "t2")
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    assert quota.refusals == 1
    await quota.take("u2", "t3")  # another user is not held back


@pytest.mark.parametrize(
    "outcome",
    [
        None,  # a duplicate frame: nothing was queued
        [None, ValueError("XADD failed")],  # the last command (the queueing) failed
    ],
)
async def test_a_turn_not_queued_gives_its_slot_back(
    redis: Redis, outcome: list[Exception | None] | None
) -> None:
    quota = TurnQuota(redis, KEYS, TurnLimits(max_concurrent=1))
    await quota.take("u1", "t1")
    assert await quota.settle("u1", "t1", _queued(outcome)) == outcome
    await quota.take("u1", "t2")  # the slot is free again


async def test_a_failed_write_gives_the_slot_back_and_raises(redis: Redis) -> None:
    quota = TurnQuota(redis, KEYS, TurnLimits(max_concurrent=1))
    await quota.take("u1", "t1")
    with pytest.raises(ConnectionError):
        await quota.settle("u1", "t1", _failing())
    await quota.take("u1", "t2")


async def test_a_queued_turn_keeps_its_slot(redis: Redis) -> None:
    quota = TurnQuota(redis, KEYS, TurnLimits(max_concurrent=1))
    await quota.take("u1", "t1")
    await quota.settle("u1", "t1", _queued([None, None]))
    with pytest.raises(ApiError):
        await quota.take("u1", "t2")


def test_the_session_ttl_is_refreshed_once_per_third_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("gateway.limits.time.monotonic", lambda: clock[0])
    ttl = SessionTtl(30)
    assert ttl.due("s1") and ttl.due("s2")
    clock[0] += 9.9
    assert not ttl.due("s1")
    clock[0] += 0.2
    assert ttl.due("s1") and not ttl.due("s1")
