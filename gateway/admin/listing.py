"""The console's list of accounts: found by part of the name, each with its
groups, last activity and this month's usage (the workers' daily counters,
no conversation read)."""

from __future__ import annotations

import json
from typing import cast

from pydantic import BaseModel
from redis.asyncio import Redis

from gateway.admin.usage import UsageReader
from shared.keys import Keys


class UserRow(BaseModel):
    """One account as the console lists it (never a password hash)."""

    id: str
    username: str
    is_admin: bool
    disabled: bool
    must_change_password: bool
    created_at: float
    #: The latest sign-in or use of a sign-in (None: never).
    last_active_at: float | None
    groups: list[str]
    #: This UTC month, from the workers' daily counters.
    turns_month: int
    tokens_month: int


class UserPage(BaseModel):
    users: list[UserRow]
    total: int


async def list_users(
    redis: Redis, keys: Keys, usage: UsageReader, q: str = "", offset: int = 0, limit: int = 50
) -> UserPage:
    """Accounts by name, ``q`` matching part of the name; a team's accounts
    are one hash (names -> ids) read whole, then one page's details."""
    names = cast(dict[str, str], await redis.hgetall(keys.usernames()))
    needle = q.casefold().strip()
    matching = sorted((n, uid) for n, uid in names.items() if needle in n)
    page = matching[offset : offset + limit]
    uids = [uid for _, uid in page]
    pipe = redis.pipeline(transaction=False)
    for uid in uids:
        pipe.hmget(
            keys.user(uid),
            [
                "username",
                "is_admin",
                "disabled",
                "must_change_password",
                "created_at",
                "last_login_at",
                "last_active_at",
            ],
        )
        pipe.hvals(keys.signins(uid))
        pipe.smembers(keys.user_groups(uid))
    rows = await pipe.execute()
    month = await usage.month_totals(uids)
    out: list[UserRow] = []
    for i, uid in enumerate(uids):
        fields, signins, member_of = rows[3 * i : 3 * i + 3]
        name, is_admin, disabled, must_change, created, last_login, last_active = fields
        if name is None:
            continue  # deleted meanwhile
        seen = [float(v) for v in (last_login, last_active) if v]
        for raw in signins:
            try:
                seen.append(float(_json_field(raw, "last_used_at")))
            except ValueError:
                continue
        counts = month[uid]
        out.append(
            UserRow(
                id=uid,
                username=name,
                is_admin=is_admin == "1",
                disabled=disabled == "1",
                must_change_password=must_change == "1",
                created_at=float(created or 0),
                last_active_at=max(seen) if seen else None,
                groups=sorted(member_of),
                turns_month=counts.turns,
                tokens_month=counts.tokens,
            )
        )
    return UserPage(users=out, total=len(matching))


def _json_field(raw: str, name: str) -> str:
    value = json.loads(raw).get(name)
    if value is None:
        raise ValueError(name)
    return str(value)
