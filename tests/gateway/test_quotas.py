"""Daily quotas an admin sets, per user and per group, enforced by the one
turn script of ``shared/user_limits.py``; and the day's totals the console
charts, counted once per turn however often it is finished."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.admin.quotas import QuotaSettings, UserQuotas
from shared.groups import GroupConfig, GroupStore
from shared.keys import Keys
from shared.user_limits import LimitExceeded, TurnLimits, UsageRecorder, UserLimits

DEFAULTS = TurnLimits(daily_token_budget=0, daily_turn_quota=5)
STORAGE = {"conversations": 0, "messages": 0, "bytes": 0}


async def turns_allowed(limits: UserLimits, uid: str, most: int = 10) -> int:
    """How many turns in a row the script lets ``uid`` start today."""
    for n in range(most):
        try:
            await limits.acquire(uid, f"{uid}-t{n}")
        except LimitExceeded as exc:
            kind = exc.kind
            break
    else:
        return most
    assert kind == "turns"
    return n


@pytest.fixture
def parts(redis: Redis, keys: Keys) -> tuple[GroupStore, UserQuotas, UserLimits]:
    groups = GroupStore(redis, keys)
    return (
        groups,
        UserQuotas(redis, keys, groups, DEFAULTS, STORAGE),
        UserLimits(redis, keys, DEFAULTS),
    )


async def test_own_quota_then_most_generous_group_then_default(
    parts: tuple[GroupStore, UserQuotas, UserLimits],
) -> None:
    groups, quotas, limits = parts
    assert await turns_allowed(limits, "nobody") == 5  # the settings' default
    await groups.create(GroupConfig(name="small", turns_day=2))
    await groups.create(GroupConfig(name="big", turns_day=3))
    for uid in ("a", "b", "c"):
        await groups.add_member("small", uid)
    await groups.add_member("big", "b")
    await quotas.recompute(["a", "b", "c"])
    await quotas.set_own("c", QuotaSettings(turns_day=1))
    assert await turns_allowed(limits, "a") == 2
    assert await turns_allowed(limits, "b") == 3  # the most generous of her groups
    assert await turns_allowed(limits, "c") == 1  # his own beats his groups
    effective = await quotas.effective("b")
    assert effective["turns_day"].source == "group" and effective["turns_day"].group == "big"


async def test_zero_is_no_limit_and_a_group_change_applies_to_its_members(
    redis: Redis, keys: Keys, parts: tuple[GroupStore, UserQuotas, UserLimits]
) -> None:
    groups, quotas, limits = parts
    await groups.create(GroupConfig(name="g", turns_day=1))
    await groups.add_member("g", "u")
    await quotas.recompute(["u"])
    assert await turns_allowed(limits, "u") == 1
    await groups.save(GroupConfig(name="g", turns_day=0))
    await quotas.recompute(await groups.members("g"))
    assert await turns_allowed(limits, "u") == 10  # 0: no limit
    await groups.remove_member("g", "u")
    await quotas.recompute(["u"])
    await redis.delete(keys.user_turns("u"))
    assert await turns_allowed(limits, "u") == 5  # back to the default


async def test_a_turn_finished_twice_counts_once_in_the_days_totals(
    redis: Redis, keys: Keys
) -> None:
    limits = UserLimits(redis, keys, TurnLimits())
    recorder = UsageRecorder(keys)
    await limits.acquire("u", "t1")
    for _ in range(2):  # at-least-once delivery: the worker finishes it again
        pipe = redis.pipeline(transaction=False)
        release = recorder.queue_release(pipe, "u", "t1", "m", 10, 5)
        await recorder.count_total(redis, release, await pipe.execute())
    assert await redis.hgetall(keys.usage_total(release.day)) == {
        "turns:m": "1",
        "prompt:m": "10",
        "completion:m": "5",
    }
