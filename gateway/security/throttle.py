"""Sign-in throttling, shared by every gateway through Redis.

Each sign-in attempt (log-in, and the current password of a password change)
is counted against the account (the name typed, whether it exists or not)
and against the client address, each by one Lua script on one key. The
count is taken *before* the password is checked, so a burst of parallel
guesses cannot all slip through before the first failure is recorded; a
success gives the attempt back (account: forgotten entirely; address: one
attempt refunded).

Past the free attempts, each one locks the key for twice as long as the one
before (1 s, 2 s, 4 s... up to 15 min); a locked key answers ``429`` with
``Retry-After`` without looking at the password. A counter is forgotten an
hour after its last attempt.

Unknown names are counted and locked exactly like real ones, and their
password is checked against a dummy hash (``AuthService``), so neither the
answers nor their timing tell which names exist.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.errors import ApiError
from gateway.security.client_address import throttle_subject
from shared.keys import (
    LOGIN_DELAY_BASE_S,
    LOGIN_DELAY_MAX_S,
    LOGIN_FORGET_AFTER_S,
    LOGIN_FREE_FAILURES_ACCOUNT,
    LOGIN_FREE_FAILURES_ADDRESS,
    Keys,
)

# KEYS[1]: the throttle hash {n: attempts counted, until: locked until (ms)}.
# ARGV: op, now (ms), free attempts, base delay (ms), max delay (ms), forget after (s).
# try: {0, attempts counted} if the attempt may go ahead (and it is
# counted), else {ms to wait, attempts counted}. Every op returns a pair.
# refund: one attempt given back; unlocks if the count is within the free ones again.
# reset: forget everything.
_THROTTLE = """
local now = tonumber(ARGV[2])
local free = tonumber(ARGV[3])
if ARGV[1] == 'try' then
  local locked = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
  if locked > now then
    return {locked - now, tonumber(redis.call('HGET', KEYS[1], 'n') or '0')}
  end
  local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
  if n > free then
    local delay = math.min(tonumber(ARGV[4]) * 2 ^ (n - free - 1), tonumber(ARGV[5]))
    redis.call('HSET', KEYS[1], 'until', now + delay)
  end
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  return {0, n}
elseif ARGV[1] == 'refund' then
  local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
  if n > 0 then
    n = redis.call('HINCRBY', KEYS[1], 'n', -1)
  end
  if n <= free then
    redis.call('HDEL', KEYS[1], 'until')
  end
  return {0, n}
end
redis.call('DEL', KEYS[1])
return {0, 0}
"""


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    account_free: int = LOGIN_FREE_FAILURES_ACCOUNT
    address_free: int = LOGIN_FREE_FAILURES_ADDRESS
    base_s: float = LOGIN_DELAY_BASE_S
    max_s: float = LOGIN_DELAY_MAX_S
    forget_after_s: int = LOGIN_FORGET_AFTER_S


@dataclass(frozen=True, slots=True)
class Attempt:
    """A counted attempt, to settle once the password has been checked;
    ``*_count``: attempts counted against each key, this one included."""

    account_key: str
    address_key: str
    account_count: int = 0
    address_count: int = 0


@dataclass(frozen=True, slots=True)
class Lockout:
    """What a failed attempt did to a throttle, worth an audit entry:
    ``failures`` reached the free attempts (a burst), or the key locked
    (first, then each time the lock doubles)."""

    scope: str  # "account" or "address"
    failures: int
    locked_s: float  # 0: a burst, not (yet) a lock


class SignInThrottle:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        rules: ThrottleRules | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.rules = rules or ThrottleRules()
        self._clock = clock
        self._script = redis.register_script(_THROTTLE)

    def _account_key(self, username: str) -> str:
        # Hashed: any string may be typed as a name; the key stays short and tame.
        digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        return self.keys.login_throttle("acct", digest)

    def _address_key(self, address: str) -> str:
        return self.keys.login_throttle("addr", throttle_subject(address))

    async def _run(self, key: str, op: str, free: int) -> tuple[int, int]:
        rules = self.rules
        wait_ms, count = await self._script(
            keys=[key],
            args=[
                op,
                int(self._clock() * 1000),
                free,
                int(rules.base_s * 1000),
                int(rules.max_s * 1000),
                rules.forget_after_s,
            ],
        )
        return int(wait_ms), int(count)

    def lockouts(self, attempt: Attempt) -> list[Lockout]:
        """After a failed attempt: the events it is worth logging. A burst
        when the failures reach the free attempts, a lockout when the lock
        starts and each time it doubles (so an attack adds a few lines an
        hour, not one per guess)."""
        out = []
        for scope, count, free in (
            ("account", attempt.account_count, self.rules.account_free),
            ("address", attempt.address_count, self.rules.address_free),
        ):
            past = count - free
            if past == 0:
                out.append(Lockout(scope, count, 0))
            elif past > 0 and past & (past - 1) == 0:
                locked = min(self.rules.base_s * 2 ** (past - 1), self.rules.max_s)
                out.append(Lockout(scope, count, locked))
        return out

    async def attempt(self, username: str, address: str) -> Attempt:
        """Count an attempt, or raise ``rate_limited`` (429) if either the
        account or the address is locked. The account goes first: a refused
        attempt on a locked account does not use up the address's allowance."""
        account_key, address_key = self._account_key(username), self._address_key(address)
        wait_ms, account_count = await self._run(account_key, "try", self.rules.account_free)
        address_count = 0
        if not wait_ms:
            wait_ms, address_count = await self._run(address_key, "try", self.rules.address_free)
            if wait_ms:
                await self._run(account_key, "refund", self.rules.account_free)
        if wait_ms:
            wait = max(1, math.ceil(wait_ms / 1000))
            raise ApiError(
                "rate_limited",
                f"too many sign-in attempts; try again in {wait} s",
                retry_after=wait,
            )
        return Attempt(account_key, address_key, account_count, address_count)

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the account starts afresh, the address
        gets its attempt back (many people may sign in from one address)."""
        await self._run(attempt.account_key, "reset", self.rules.account_free)
        await self._run(attempt.address_key, "refund", self.rules.address_free)

    async def address_attempt(self, address: str) -> str:
        """Count an attempt of the address alone (a sign-up, which can tell
        whether a name is taken); returns the key to refund on success."""
        key = self._address_key(address)
        wait_ms, _count = await self._run(key, "try", self.rules.address_free)
        if wait_ms:
            wait = max(1, math.ceil(wait_ms / 1000))
            raise ApiError(
                "rate_limited", f"too many attempts; try again in {wait} s", retry_after=wait
            )
        return key

    async def refund_address(self, key: str) -> None:
        await self._run(key, "refund", self.rules.address_free)
