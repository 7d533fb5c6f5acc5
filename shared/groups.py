"""Groups of users: what model access, group quotas and retention policies
are given to.

A group's settings are one field of ``keys.groups()`` (JSON); its members a
set ``keys.group_members(name)`` for listing, and each member's own
``keys.user_groups(uid)``, which is what access checks and quota
computations read on the user's slot. The two sets are written together in
one pipeline (two slots, so not one transaction: a crash between them
leaves a listing one name off, never an access check wrong for long, and
``add_member``/``remove_member`` repair it when run again).
"""

from __future__ import annotations

import time
from typing import Annotated, cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared.keys import Keys
from shared.models_file import GROUP_PATTERN


class GroupConfig(BaseModel):
    name: Annotated[str, Field(pattern=GROUP_PATTERN)]
    description: Annotated[str, Field(max_length=300)] = ""
    created_at: float = Field(default_factory=time.time)
    #: Daily quotas for the group's members (None: the group sets none; 0: no
    #: limit). A member gets the most generous of their groups' unless an
    #: admin set their own.
    tokens_day: Annotated[int, Field(ge=0)] | None = None
    turns_day: Annotated[int, Field(ge=0)] | None = None
    #: Retention: members' conversations untouched this many days are
    #: deleted while ``retention_on``; a member gets the strictest policy
    #: among their groups'.
    retention_days: Annotated[int, Field(ge=1, le=36_500)] | None = None
    retention_on: bool = False

    @property
    def retention(self) -> int | None:
        """Days, when the policy is on."""
        return self.retention_days if self.retention_on and self.retention_days else None


class GroupStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def all(self) -> dict[str, GroupConfig]:
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.groups()))
        return {name: GroupConfig.model_validate_json(v) for name, v in sorted(raw.items())}

    async def get(self, name: str) -> GroupConfig | None:
        raw = cast("str | None", await self.redis.hget(self.keys.groups(), name))
        return GroupConfig.model_validate_json(raw) if raw else None

    async def save(self, group: GroupConfig) -> None:
        await self.redis.hset(self.keys.groups(), group.name, group.model_dump_json())

    async def create(self, group: GroupConfig) -> bool:
        """False if a group of that name exists."""
        return bool(
            await self.redis.hsetnx(self.keys.groups(), group.name, group.model_dump_json())
        )

    async def members(self, name: str) -> set[str]:
        return cast(set[str], await self.redis.smembers(self.keys.group_members(name)))

    async def member_counts(self, names: list[str]) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.scard(self.keys.group_members(name))
        return dict(zip(names, (int(n) for n in await pipe.execute()), strict=True))

    async def user_groups(self, uid: str) -> set[str]:
        return cast(set[str], await self.redis.smembers(self.keys.user_groups(uid)))

    async def add_member(self, name: str, uid: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.user_groups(uid), name)
        pipe.sadd(self.keys.group_members(name), uid)
        await pipe.execute()

    async def remove_member(self, name: str, uid: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(self.keys.user_groups(uid), name)
        pipe.srem(self.keys.group_members(name), uid)
        await pipe.execute()

    async def delete(self, name: str) -> set[str]:
        """Delete a group; returns the users who were in it."""
        members = await self.members(name)
        pipe = self.redis.pipeline(transaction=False)
        for uid in members:
            pipe.srem(self.keys.user_groups(uid), name)
        pipe.delete(self.keys.group_members(name))
        pipe.hdel(self.keys.groups(), name)
        await pipe.execute()
        return members

    async def leave_all(self, uid: str) -> set[str]:
        """Take ``uid`` out of every group (an account deleted)."""
        groups = await self.user_groups(uid)
        pipe = self.redis.pipeline(transaction=False)
        for name in groups:
            pipe.srem(self.keys.group_members(name), uid)
        pipe.delete(self.keys.user_groups(uid))
        await pipe.execute()
        return groups


def strictest_retention(user_groups: set[str], groups: dict[str, GroupConfig]) -> int | None:
    """The retention (days) that applies to a member of ``user_groups``: the
    shortest among their groups' policies that are on; None: keep forever."""
    days = [g.retention for name, g in groups.items() if name in user_groups and g.retention]
    return min(days) if days else None
