"""Whether a turn (or a new conversation, or an import) may be accepted:
everything the gateway checks in Redis first, in one round trip.

- the pool's queue: turns on its stream not yet delivered plus turns waiting
  in users' lines, past ``max_queued_turns``: ``busy`` (read at most every
  ``CAPACITY_TTL_S`` per pool and counted up locally in between);
- the user's own line in that pool, past ``max_waiting_per_user``: ``busy``,
  so a few accounts cannot fill the pool's queue for everyone;
- the user's storage (``shared/storage_usage.py``) against the quotas
  (the settings', or the user's own set by an admin): ``quota_exceeded``;
- whether the user may use the model (``shared/access.py``): ``forbidden``.

These limits are checked before the write and counted by it, so a user
with several requests in flight at once can pass a limit by those few.
"""

from __future__ import annotations

import time
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.errors import ApiError
from shared import storage_usage
from shared.access import ModelAccess
from shared.audit import AuditLog, Party
from shared.keys import QUOTA_HIT_LOG_TTL_S, WORKER_GROUP, Keys
from shared.models_file import ModelSpec
from shared.usage import usage_day

#: The user's own storage quotas, in the limits hash an admin writes.
_OWN_QUOTAS = ["conversations", "messages", "bytes"]

#: How long a pool's queue depth, read from Redis, is trusted (seconds).
CAPACITY_TTL_S = 0.25


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per-user storage limits; 0 is no limit."""

    conversations: int = 0
    messages: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class Adds:
    """What an accepted request will store."""

    conversations: int = 0
    messages: int = 0
    bytes: int = 0


@dataclass(eq=False)
class Admission:
    redis: Redis
    keys: Keys
    _: KW_ONLY
    max_queued_turns: int
    max_waiting_per_user: int
    quotas: Quotas
    audit: AuditLog | None = None
    refusals: int = field(default=0, init=False)
    quota_refusals: int = field(default=0, init=False)
    #: A pool's queue depth as last read, and when (``CAPACITY_TTL_S``).
    _depth: dict[str, tuple[int, float]] = field(default_factory=dict, init=False)
    _queued: dict[str, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.access = ModelAccess(self.redis, self.keys)

    async def check(self, uid: str, spec: ModelSpec | None, adds: Adds) -> None:
        """Refuse (``forbidden``, ``quota_exceeded``, ``busy``) or return;
        ``spec`` None: no turn (a conversation created or imported)."""
        t = time.monotonic()
        pool = spec.pool if spec is not None else None
        seen = self._depth.get(pool) if pool is not None else None
        stale = pool is not None and (seen is None or t - seen[1] > CAPACITY_TTL_S)
        pipe = self.redis.pipeline(transaction=False)
        storage_usage.queue_read(pipe, self.keys, uid)
        pipe.hmget(self.keys.user_limits(uid), _OWN_QUOTAS)
        if spec is not None:
            self.access.queue_read(pipe, uid, spec.id)
        if pool is not None:
            pipe.llen(self.keys.line(pool, uid))
        if stale and pool is not None:
            pipe.xinfo_groups(self.keys.prompts(pool))
            pipe.xlen(self.keys.prompts(pool))
            pipe.hlen(self.keys.fair_waiting(pool))
        results = await pipe.execute(raise_on_error=False)
        fixed = 5 if spec is not None else 2
        for result in results[:fixed]:
            if isinstance(result, Exception):
                raise result
        if spec is not None and not ModelAccess.check(spec, results[2], results[3]):
            raise ApiError(
                "forbidden",
                f"you may not use the model {spec.display_name}; pick another model "
                "(an admin decides who may use which)",
            )
        held = storage_usage.parse(results[0])
        if not held.counted:
            held = await storage_usage.recount(self.redis, self.keys, uid)
        await self._check_quotas(uid, held, adds, _own(self.quotas, results[1]))
        if spec is None or pool is None:
            return
        # As before the quota and access reads: [1] the user's line, [2:5] the pool.
        results = results[3:]
        mine = int(results[1])
        if mine >= self.max_waiting_per_user:
            self.refusals += 1
            raise ApiError(
                "busy",
                f"you already have {mine} replies waiting for {spec.id}; "
                "wait for them (or stop some) before asking for more",
            )
        if stale:
            depth = _depth(results[2], results[3]) + int(results[4] or 0)
            self._depth[pool] = (depth, t)
            self._queued[pool] = 0
        else:
            assert seen is not None
            depth = seen[0]
        waiting = depth + self._queued.get(pool, 0)
        if waiting >= self.max_queued_turns:
            self.refusals += 1
            raise ApiError(
                "busy", f"{waiting} replies are already waiting for {spec.id}; try again shortly"
            )

    def queued(self, pool: str) -> None:
        """One more turn queued by this process since the depth was read."""
        self._queued[pool] = self._queued.get(pool, 0) + 1

    async def _check_quotas(
        self, uid: str, held: storage_usage.Stored, adds: Adds, q: Quotas
    ) -> None:
        why = None
        if (
            adds.conversations
            and q.conversations
            and held.conversations + adds.conversations > (q.conversations)
        ):
            why = f"you have {held.conversations:,} conversations, the most an account may keep"
        elif adds.messages and q.messages and held.messages + adds.messages > q.messages:
            why = (
                f"your conversations hold {held.messages:,} messages, the most an account "
                f"may keep is {q.messages:,}"
            )
        elif q.bytes and held.bytes + adds.bytes > q.bytes:
            why = (
                f"your conversations hold {_mb(held.bytes)} of text, the most an account "
                f"may keep is {_mb(q.bytes)}"
            )
        if why is not None:
            self.quota_refusals += 1
            await self._log_hit(uid, why)
            raise ApiError("quota_exceeded", f"{why}; delete some conversations to make room")

    async def _log_hit(self, uid: str, why: str) -> None:
        """The first storage-quota refusal of the day for ``uid`` goes in the audit log."""
        if self.audit is None:
            return
        marker = self.keys.quota_hit_logged(uid, "storage", usage_day(time.time()))
        if await self.redis.set(marker, "1", nx=True, ex=QUOTA_HIT_LOG_TTL_S):
            await self.audit.record("quota.hit", target=Party(id=uid), quota="storage", why=why)


def _own(defaults: Quotas, row: list[str | None]) -> Quotas:
    """The user's storage quotas: their own (set by an admin) or the settings'."""
    conversations, messages, nbytes = (None if v is None else int(v) for v in row)
    return Quotas(
        defaults.conversations if conversations is None else conversations,
        defaults.messages if messages is None else messages,
        defaults.bytes if nbytes is None else nbytes,
    )


def _depth(groups: Any, length: Any) -> int:
    """Turns on the stream no worker has read yet: the consumer group's lag
    (no group yet: every entry)."""
    if isinstance(groups, ResponseError):  # no stream yet: nothing is waiting
        return 0
    for group in groups:
        if group.get("name") == WORKER_GROUP:
            return int(group.get("lag") or 0)
    return int(length or 0)


def _mb(n: int) -> str:
    return f"{n / 1_000_000:,.1f} MB"
