"""Account records: making one (sign-up, an invite, an admin), its state
(disabled, a one-time password, being deleted), and the index of admins that
makes sure there is always one.

An account is the hash ``keys.user(uid)``: ``username``, ``password_hash``,
``is_admin``, ``created_at``, and since issue 13 ``disabled`` (``"1"``),
``must_change_password`` (``"1"``: signed in with a password an admin set),
``deleting`` (``"1"``: its data is being purged), ``created_by``,
``last_login_at``. ``keys.usernames()`` maps lower-cased names to ids.

``keys.admins()`` holds the ids of the *enabled* admins. Taking one away
(demote, disable, delete) is one script that refuses to empty it, so two
admins demoting each other at the same moment cannot leave none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from gateway.admin.quotas import UserQuotas
from gateway.errors import ApiError
from shared.conversation import new_id
from shared.groups import GroupStore
from shared.keys import Keys
from shared.protocol import UserInfo

# KEYS[1]: the admins set. ARGV: uid. 1: removed (or was not an admin); 0:
# refused, it is the last one.
_REMOVE_ADMIN = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 1 end
if redis.call('SCARD', KEYS[1]) <= 1 then return 0 end
redis.call('SREM', KEYS[1], ARGV[1])
return 1
"""

LAST_ADMIN = "this is the only admin left: make someone else an admin first"


def user_info(uid: str, record: dict[str, str]) -> UserInfo:
    return UserInfo(
        id=uid,
        username=record["username"],
        is_admin=record.get("is_admin") == "1",
        must_change_password=record.get("must_change_password") == "1",
    )


def usable(record: dict[str, str]) -> bool:
    """Whether the account may be signed in with (not disabled or deleted)."""
    return bool(record) and record.get("disabled") != "1" and record.get("deleting") != "1"


@dataclass(eq=False)
class Accounts:
    """The account records: reading them, and the always-one-admin script."""

    redis: Redis
    keys: Keys
    groups: GroupStore
    quotas: UserQuotas

    def __post_init__(self) -> None:
        self._remove_admin = self.redis.register_script(_REMOVE_ADMIN)

    async def create(
        self,
        name: str,
        password_hash: str,
        *,
        is_admin: bool = False,
        must_change_password: bool = False,
        groups: list[str] | None = None,
        created_by: str = "",
    ) -> UserInfo:
        """A new account; 409 if the name is taken. The first account ever
        made is an admin, however it is made."""
        uid = new_id()
        if not await self.redis.hsetnx(self.keys.usernames(), name.casefold(), uid):
            raise ApiError("bad_request", f"the username {name!r} is taken", status=409)
        number = await self.redis.incr(self.keys.user_count())
        admin = is_admin or number == 1
        record = {
            "username": name,
            "password_hash": password_hash,
            "is_admin": "1" if admin else "0",
            "created_at": str(time.time()),
            "created_by": created_by,
        }
        if must_change_password:
            record["must_change_password"] = "1"
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.user(uid), mapping=cast(Any, record))
        if admin:
            pipe.sadd(self.keys.admins(), uid)
        await pipe.execute()
        if groups:
            for group in groups:
                await self.groups.add_member(group, uid)
            await self.quotas.recompute([uid])
        return user_info(uid, record)

    async def record(self, uid: str) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(self.keys.user(uid)))

    async def by_name(self, name: str) -> str | None:
        return cast("str | None", await self.redis.hget(self.keys.usernames(), name.casefold()))

    async def ensure_admin_index(self) -> None:
        """Build ``keys.admins()`` from the accounts once (a deployment from
        before it existed); afterwards every change keeps it."""
        if await self.redis.exists(self.keys.admins()):
            return
        uids = cast(list[str], await self.redis.hvals(self.keys.usernames()))
        admins: list[str] = []
        for start in range(0, len(uids), 500):
            batch = uids[start : start + 500]
            pipe = self.redis.pipeline(transaction=False)
            for uid in batch:
                pipe.hmget(self.keys.user(uid), ["is_admin", "disabled", "deleting"])
            for uid, (is_admin, disabled, deleting) in zip(
                batch, await pipe.execute(), strict=True
            ):
                if is_admin == "1" and disabled != "1" and deleting != "1":
                    admins.append(uid)
        if admins:
            await self.redis.sadd(self.keys.admins(), *admins)

    async def take_admin(self, uid: str) -> None:
        """Take ``uid`` off the enabled admins, or refuse (409) if it is the last."""
        if not await self._remove_admin(keys=[self.keys.admins()], args=[uid]):
            raise ApiError("bad_request", LAST_ADMIN, status=409)

    async def give_admin(self, uid: str) -> None:
        await self.redis.sadd(self.keys.admins(), uid)

    async def admin_count(self) -> int:
        return int(await self.redis.scard(self.keys.admins()))
