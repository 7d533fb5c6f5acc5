"""Sign-in throttling on real Redis: counted before the password is checked,
growing delays, shared by every gateway (one script per key)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from gateway.errors import ApiError
from gateway.security.throttle import SignInThrottle, ThrottleRules
from shared.keys import Keys

RULES = ThrottleRules(account_free=3, address_free=5, base_s=1, max_s=8, forget_after_s=3600)


class Clock:
    def __init__(self) -> None:
        self.t = 1_900_000_000.0

    def __call__(self) -> float:
        return self.t


async def tries(throttle: SignInThrottle, name: str, address: str) -> int | None:
    """None: the attempt may go ahead (it is counted); else the Retry-After."""
    try:
        await throttle.attempt(name, address)
    except ApiError as exc:
        refused = exc
    else:
        return None
    assert refused.code == "rate_limited" and refused.status == 429
    return refused.retry_after


async def test_each_attempt_past_the_free_ones_waits_twice_as_long(
    redis: Redis, keys: Keys
) -> None:
    clock = Clock()
    throttle = SignInThrottle(redis, keys, RULES, clock=clock)
    waits = []
    for _ in range(9):
        while (wait := await tries(throttle, "alice", "198.51.100.1")) is not None:
            waits.append(wait)
            clock.t += wait
    # 3 free; the 4th, 5th... go ahead but lock the account for 1, 2, 4, 8, 8 s
    assert waits == [1, 2, 4, 8, 8]


async def test_a_success_unlocks_the_account_and_refunds_the_address(
    redis: Redis, keys: Keys
) -> None:
    clock = Clock()
    throttle = SignInThrottle(redis, keys, RULES, clock=clock)
    for _ in range(3):
        assert await tries(throttle, "bob", "198.51.100.2") is None
    attempt = await throttle.attempt("bob", "198.51.100.2")
    await throttle.succeeded(attempt)
    for _ in range(3):  # the account starts afresh
        assert await tries(throttle, "bob", "198.51.100.2") is None


async def test_an_address_guessing_many_names_is_locked_but_not_its_neighbours(
    redis: Redis, keys: Keys
) -> None:
    throttle = SignInThrottle(redis, keys, RULES, clock=Clock())
    results = [await tries(throttle, f"name{n}", "203.0.113.9") for n in range(8)]
    assert results[:6] == [None] * 6 and results[6] is not None
    assert await tries(throttle, "name99", "203.0.113.10") is None
    # IPv6: a whole /64 is one address (one host usually holds it all).
    for n in range(6):
        await tries(throttle, f"v6name{n}", f"2001:db8:1:2::{n + 1}")
    assert await tries(throttle, "v6other", "2001:db8:1:2:ffff::1") is not None
    assert await tries(throttle, "v6other", "2001:db8:1:3::1") is None


async def test_a_burst_of_parallel_guesses_cannot_outrun_the_count(
    redis: Redis, keys: Keys
) -> None:
    """40 guesses at once from two gateways: the count is taken atomically
    before any password is checked, so only the free ones (and the one that
    locks) go ahead."""
    clock = Clock()
    gateways = [SignInThrottle(redis, keys, RULES, clock=clock) for _ in range(2)]
    results = await asyncio.gather(
        *(tries(gateways[n % 2], "carol", f"192.0.2.{n}") for n in range(40))
    )
    assert sum(r is None for r in results) == RULES.account_free + 1


async def test_a_locked_account_does_not_use_up_the_address(redis: Redis, keys: Keys) -> None:
    clock = Clock()
    throttle = SignInThrottle(redis, keys, RULES, clock=clock)
    for _ in range(4):
        await tries(throttle, "dave", "198.51.100.7")
    for _ in range(50):  # hammering the locked account: refused, not counted
        assert await tries(throttle, "dave", "198.51.100.7") is not None
    assert await tries(throttle, "erin", "198.51.100.7") is None


async def test_counters_are_forgotten_an_hour_after_the_last_attempt(
    redis: Redis, keys: Keys
) -> None:
    throttle = SignInThrottle(redis, keys, RULES, clock=Clock())
    await throttle.attempt("frank", "198.51.100.8")
    ttls = [await redis.ttl(k) for k in await redis.keys("tc:throttle:*")]
    assert len(ttls) == 2 and all(3590 < t <= 3600 for t in ttls)
    # A name is hashed into its key: any string may be typed, nothing of it is stored.
    assert not any("frank" in k for k in await redis.keys("*"))


@pytest.mark.parametrize("name", ["Alice", " alice ", "ALICE"])
async def test_one_account_however_its_name_is_typed(redis: Redis, keys: Keys, name: str) -> None:
    throttle = SignInThrottle(redis, keys, RULES, clock=Clock())
    for _ in range(4):
        await tries(throttle, "alice", f"192.0.2.{_}")
    assert await tries(throttle, name, "192.0.2.200") is not None
