"""What an admin does to accounts: list and search them (with their month's
usage), create one (a one-time password or an invite link), disable and
enable, delete with all their data, reset a password, make or unmake an
admin. Every action goes in the audit log.

Ending an account's access is the sign-ins' revocation
(``security/signins.py``): the tokens are deleted and their hashes published,
so every gateway closes the account's sockets and streams at once, with the
reason; a request with one of them is refused by the account's state anyway.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from gateway.admin import AdminParts
from gateway.admin.invites import Invite
from gateway.admin.listing import UserPage, list_users
from gateway.admin.usage import last_days
from gateway.auth import AuthService, check_new_password, check_username
from gateway.errors import ApiError
from shared.audit import Party
from shared.collections import CollectionStore
from shared.files import FileStore
from shared.keys import INVITE_TTL_S, USAGE_TTL_S, Keys
from shared.models_file import GroupName
from shared.protocol import UserInfo
from shared.store import ConversationStore

#: Conversations deleted per batch when an account is deleted (each one a
#: small transaction through the store: Redis is never held for long).
DELETE_BATCH = 50

DISABLED_REASON = "an admin disabled your account"
RESET_REASON = "an admin reset your password: sign in with the new one"
DELETED_REASON = "an admin deleted your account"


class NewUser(BaseModel):
    """``password``: the account gets a one-time password (given, or made up
    here and shown once) it must change at first sign-in. ``invite``: an
    invite link, the invitee chooses the password (and the name, unless
    ``username`` is given)."""

    method: Literal["password", "invite"] = "password"
    username: Annotated[str, Field(max_length=32)] | None = None
    password: Annotated[str, Field(max_length=256)] | None = None
    is_admin: bool = False
    groups: list[GroupName] = Field(default_factory=list, max_length=50)
    #: How long an invite link works.
    invite_hours: Annotated[int, Field(ge=1, le=30 * 24)] = INVITE_TTL_S // 3600


class Created(BaseModel):
    user: UserInfo | None = None
    #: The one-time password, shown once (method ``password``).
    password: str | None = None
    #: The invite link's path with its token in the fragment, shown once.
    invite_path: str | None = None
    invite: Invite | None = None


@dataclass(eq=False)
class UserAdmin:
    """What an admin does to accounts (``/api/admin/users``)."""

    redis: Redis
    keys: Keys
    auth: AuthService
    #: Accounts, invites, sign-ins, groups, quotas, usage, the audit log.
    parts: AdminParts

    def __post_init__(self) -> None:
        self.store = ConversationStore(self.redis, self.keys)

    # --- reading ---------------------------------------------------------------

    async def list(self, q: str = "", offset: int = 0, limit: int = 50) -> UserPage:
        return await list_users(self.redis, self.keys, self.parts.usage, q, offset, limit)

    async def _target(self, uid: str) -> dict[str, str]:
        record = await self.parts.accounts.record(uid)
        if not record or record.get("deleting") == "1":
            raise ApiError("not_found", "no such user")
        return record

    # --- creating --------------------------------------------------------------

    async def create(self, admin: UserInfo, body: NewUser, address: str) -> Created:
        actor = Party(id=admin.id, name=admin.username)
        for group in body.groups:
            if await self.parts.groups.get(group) is None:
                raise ApiError("bad_request", f"there is no group {group!r}")
        if body.method == "invite":
            name = body.username.strip() if body.username else None
            if name is not None:
                check_username(name)
            token, invite = await self.parts.invites.create(
                username=name,
                is_admin=body.is_admin,
                groups=body.groups,
                created_by=admin.id,
                ttl_s=body.invite_hours * 3600,
            )
            await self.parts.audit.record(
                "user.invited",
                actor=actor,
                address=address,
                invite=invite.id,
                username=name,
                is_admin=body.is_admin,
                groups=body.groups,
                hours=body.invite_hours,
            )
            return Created(invite_path=f"/invite#{token}", invite=invite)
        if not body.username:
            raise ApiError("bad_request", "a username is needed")
        name = body.username.strip()
        check_username(name)
        password = body.password or _one_time_password()
        check_new_password(password)
        user = await self.parts.accounts.create(
            name,
            await self.auth.hash_password(password),
            is_admin=body.is_admin,
            must_change_password=True,
            groups=body.groups,
            created_by=admin.id,
        )
        await self.parts.audit.record(
            "user.created",
            actor=actor,
            target=Party(id=user.id, name=user.username),
            address=address,
            is_admin=user.is_admin,
            groups=body.groups,
        )
        return Created(user=user, password=password)

    # --- changing --------------------------------------------------------------

    async def set_disabled(self, admin: UserInfo, uid: str, disabled: bool, address: str) -> None:
        record = await self._target(uid)
        if uid == admin.id and disabled:
            raise ApiError("bad_request", "you cannot disable your own account")
        target = Party(id=uid, name=record["username"])
        if disabled:
            if record.get("is_admin") == "1":
                await self.parts.accounts.take_admin(uid)
            await self.redis.hset(self.keys.user(uid), "disabled", "1")
            # After the flag: a request racing this finds the account disabled.
            await self.parts.signins.revoke_all(uid, DISABLED_REASON)
        else:
            await self.redis.hdel(self.keys.user(uid), "disabled")
            if record.get("is_admin") == "1":
                await self.parts.accounts.give_admin(uid)
        await self.parts.audit.record(
            "user.disabled" if disabled else "user.enabled",
            actor=Party(id=admin.id, name=admin.username),
            target=target,
            address=address,
        )

    async def set_admin(self, admin: UserInfo, uid: str, is_admin: bool, address: str) -> None:
        record = await self._target(uid)
        if is_admin:
            await self.redis.hset(self.keys.user(uid), "is_admin", "1")
            if record.get("disabled") != "1":
                await self.parts.accounts.give_admin(uid)
        else:
            if record.get("is_admin") == "1":
                await self.parts.accounts.take_admin(uid)
            await self.redis.hset(self.keys.user(uid), "is_admin", "0")
        await self.parts.audit.record(
            "user.admin_granted" if is_admin else "user.admin_revoked",
            actor=Party(id=admin.id, name=admin.username),
            target=Party(id=uid, name=record["username"]),
            address=address,
        )

    async def reset_password(self, admin: UserInfo, uid: str, address: str) -> str:
        """A new one-time password (returned, shown once); every sign-in of
        the account ends."""
        record = await self._target(uid)
        password = _one_time_password()
        digest = await self.auth.hash_password(password)
        await self.redis.hset(
            self.keys.user(uid),
            mapping={
                "password_hash": digest,
                "must_change_password": "1",
                "credentials_changed_at": str(time.time()),
            },
        )
        await self.parts.signins.revoke_all(uid, RESET_REASON)
        await self.parts.audit.record(
            "user.password_reset",
            actor=Party(id=admin.id, name=admin.username),
            target=Party(id=uid, name=record["username"]),
            address=address,
        )
        return password

    async def delete(self, admin: UserInfo, uid: str, address: str) -> int:
        """Delete the account and everything it owns; returns how many
        conversations went. The account is marked first (it can no longer
        sign in, nor be found by name), then its conversations are deleted
        through the conversation store a batch at a time, its files through
        the file store, then its keys."""
        record = await self._target(uid)
        if uid == admin.id:
            raise ApiError("bad_request", "you cannot delete your own account")
        if record.get("is_admin") == "1" and record.get("disabled") != "1":
            await self.parts.accounts.take_admin(uid)
        await self.redis.hset(self.keys.user(uid), "deleting", "1")
        await self.parts.signins.revoke_all(uid, DELETED_REASON)
        deleted = 0
        while True:
            page, _ = await self.store.list_for_user(uid, limit=DELETE_BATCH)
            if not page:
                break
            for summary in page:
                await self.store.delete(summary.id, uid)
            deleted += len(page)
        # Their files (documents, images): bytes, chunks, records, counters.
        files = FileStore(self.redis, self.keys)
        while stored := await files.list_for_user(uid):
            for file in stored:
                await files.delete(file)
        await CollectionStore(self.redis, self.keys).delete_all_keys(uid)
        await self.parts.groups.leave_all(uid)
        keys = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(keys.usernames(), record["username"].casefold())
        for key in (
            keys.signins(uid),
            keys.user_storage(uid),
            keys.user_limits(uid),
            keys.user_turns(uid),
            keys.user_recent_turns(uid),
            keys.user_stops(uid),
            keys.user_feed(uid),
            keys.user_files(uid),
            keys.user_file_usage(uid),
            *(keys.quota_hit_logged(uid, "storage", day) for day in last_days(2)),
            *(keys.user_usage(uid, day) for day in last_days(USAGE_TTL_S // 86400 + 1)),
            keys.user(uid),
        ):
            pipe.delete(key)
        await pipe.execute()
        await self.parts.audit.record(
            "user.deleted",
            actor=Party(id=admin.id, name=admin.username),
            target=Party(id=uid, name=record["username"]),
            address=address,
            conversations=deleted,
        )
        return deleted


def _one_time_password() -> str:
    """Readable enough to read out (no look-alike characters), 80 bits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
