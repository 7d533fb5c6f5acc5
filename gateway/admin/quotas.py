"""Per-user limits an admin sets: daily token and turn quotas (per user and
per group) and storage quotas (per user), kept in the user's limits hash
(``keys.user_limits(uid)``) where the checks read them:

- the daily quotas by the turn script of ``shared/user_limits.py`` (the
  same script as the per-minute and concurrency limits, so one atomic
  check): it reads ``tokens_day`` / ``turns_day``, the *effective* values
  written here whenever the user's own setting, their groups or a group's
  quota change: the user's own if set, else the most generous of their
  groups' (0 is "no limit", the most generous), else absent (the
  settings' default);
- the storage quotas by ``gateway/admission.py`` (``conversations``,
  ``messages``, ``bytes``; absent: the settings' default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal, cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared.groups import GroupConfig, GroupStore
from shared.keys import Keys
from shared.usage import seconds_to_next_day, usage_day
from shared.user_limits import TurnLimits

Limit = Annotated[int, Field(ge=0)] | None
DAILY = ("tokens_day", "turns_day")
STORAGE = ("conversations", "messages", "bytes")


class QuotaSettings(BaseModel):
    """What an admin sets for one user; None: not set (inherit)."""

    tokens_day: Limit = None
    turns_day: Limit = None
    conversations: Limit = None
    messages: Limit = None
    bytes: Limit = None


class EffectiveLimit(BaseModel):
    value: int
    #: Where it comes from: the user's own setting, a group, or the default.
    source: Literal["user", "group", "default"]
    group: str | None = None


class Usage(BaseModel):
    used: int
    #: 0: no limit.
    limit: int


class QuotaStatus(BaseModel):
    """What a user sees of their daily quotas (``GET /api/quota``)."""

    day: str
    tokens: Usage
    turns: Usage
    #: Seconds until the quotas renew (midnight UTC).
    resets_in: int


@dataclass(eq=False)
class UserQuotas:
    """A user's limits: their own (set by an admin), their groups', the defaults."""

    redis: Redis
    keys: Keys
    groups: GroupStore
    defaults: TurnLimits
    storage_defaults: dict[str, int]

    async def own(self, uid: str) -> QuotaSettings:
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.user_limits(uid)))
        values = {
            **{f: raw.get(f"own_{f}") for f in DAILY},
            **{f: raw.get(f) for f in STORAGE},
        }
        return QuotaSettings.model_validate({k: v for k, v in values.items() if v is not None})

    async def set_own(self, uid: str, settings: QuotaSettings) -> None:
        key = self.keys.user_limits(uid)
        names = {**{f: f"own_{f}" for f in DAILY}, **{f: f for f in STORAGE}}
        pipe = self.redis.pipeline(transaction=False)
        for field, stored in names.items():
            value = getattr(settings, field)
            if value is None:
                pipe.hdel(key, stored)
            else:
                pipe.hset(key, stored, value)
        await pipe.execute()
        await self.recompute([uid])

    def _effective(
        self, own: dict[str, str], member_of: set[str], groups: dict[str, GroupConfig]
    ) -> dict[str, EffectiveLimit]:
        out: dict[str, EffectiveLimit] = {}
        defaults = {
            "tokens_day": self.defaults.daily_token_budget,
            "turns_day": self.defaults.daily_turn_quota,
        }
        for field in DAILY:
            mine = own.get(f"own_{field}")
            if mine is not None:
                out[field] = EffectiveLimit(value=int(mine), source="user")
                continue
            offered = [
                (getattr(g, field), name)
                for name, g in groups.items()
                if name in member_of and getattr(g, field) is not None
            ]
            if offered:
                # 0 is "no limit": the most generous of all.
                value, name = max(offered, key=lambda o: (o[0] == 0, o[0]))
                out[field] = EffectiveLimit(value=value, source="group", group=name)
            else:
                out[field] = EffectiveLimit(value=defaults[field], source="default")
        for field in STORAGE:
            mine = own.get(field)
            out[field] = (
                EffectiveLimit(value=int(mine), source="user")
                if mine is not None
                else EffectiveLimit(value=self.storage_defaults[field], source="default")
            )
        return out

    async def effective(self, uid: str) -> dict[str, EffectiveLimit]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.user_limits(uid))
        pipe.smembers(self.keys.user_groups(uid))
        own, member_of = await pipe.execute()
        return self._effective(own, member_of, await self.groups.all())

    async def recompute(self, uids: list[str] | set[str]) -> None:
        """Write the effective daily quotas the turn script reads, for
        ``uids`` (after their own setting, their groups, or a group changed)."""
        uids = list(uids)
        if not uids:
            return
        groups = await self.groups.all()
        for start in range(0, len(uids), 200):
            batch = uids[start : start + 200]
            pipe = self.redis.pipeline(transaction=False)
            for uid in batch:
                pipe.hgetall(self.keys.user_limits(uid))
                pipe.smembers(self.keys.user_groups(uid))
            replies = await pipe.execute()
            writes = self.redis.pipeline(transaction=False)
            for i, uid in enumerate(batch):
                own, member_of = replies[2 * i], replies[2 * i + 1]
                effective = self._effective(own, member_of, groups)
                key = self.keys.user_limits(uid)
                for field in DAILY:
                    limit = effective[field]
                    if limit.source == "default":
                        writes.hdel(key, field)
                    else:
                        writes.hset(key, field, limit.value)
            await writes.execute()

    async def status(self, uid: str) -> QuotaStatus:
        now = time.time()
        day = usage_day(now)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.user_limits(uid), list(DAILY))
        pipe.hgetall(self.keys.user_usage(uid, day))
        pipe.zcount(self.keys.user_turns(uid), int(now * 1000), "+inf")
        (tokens_day, turns_day), usage, running = await pipe.execute()
        tokens = turns = 0
        for field, value in usage.items():
            if field.startswith(("prompt:", "completion:")):
                tokens += int(value)
            elif field.startswith("turns:"):
                turns += int(value)
        return QuotaStatus(
            day=day,
            tokens=Usage(
                used=tokens,
                limit=int(tokens_day)
                if tokens_day is not None
                else self.defaults.daily_token_budget,
            ),
            turns=Usage(
                used=turns + int(running),
                limit=int(turns_day) if turns_day is not None else self.defaults.daily_turn_quota,
            ),
            resets_in=seconds_to_next_day(now),
        )
