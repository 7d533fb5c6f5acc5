"""Accounts and sign-ins, stored in Redis.

Passwords are hashed with argon2id (argon2-cffi's defaults), off the event
loop because a hash costs tens of milliseconds by design. A sign-in is a
random token: the browser gets it in an HttpOnly cookie, scripts send it as
``Authorization: Bearer``. Only its SHA-256 is stored, so a copy of the
database does not let anyone sign in (``security/signins.py``).

Guessing is throttled per account and per client address
(``security/throttle.py``). A name that does not exist is answered exactly
like a wrong password, after checking the password against a dummy hash, so
neither the answer nor its timing tells which names exist. Bursts of
failures and lockouts go in the audit log.

Who may sign up is the sign-up mode an admin sets (``admin/runtime.py``):
open, invite-only (an invite link, ``admin/invites.py``) or closed. A
disabled account is refused with ``account_disabled``, only once the
password is right (so it tells a guesser nothing).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Annotated, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from gateway.admin import AdminParts
from gateway.admin.accounts import usable, user_info
from gateway.admin.invites import TakenInvite
from gateway.config import SignupMode
from gateway.errors import ApiError
from gateway.security.signins import SignInRecord, token_hash
from gateway.security.throttle import Attempt, SignInThrottle
from shared.audit import Party
from shared.keys import Keys
from shared.protocol import UserInfo

COOKIE_NAME = "tc_session"
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"
_USERNAME_RE = re.compile(USERNAME_PATTERN)
MIN_PASSWORD_CHARS = 8
WRONG_CREDENTIALS = "wrong username or password"


class Credentials(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class SignupRequest(Credentials):
    #: The token of an invite link (its fragment, ``/invite#<token>``).
    invite: Annotated[str, Field(max_length=256)] | None = None


class PasswordChange(BaseModel):
    current_password: Annotated[str, Field(min_length=1, max_length=256)]
    new_password: Annotated[str, Field(min_length=1, max_length=256)]


class Session(BaseModel):
    token: str
    user: UserInfo


class AuthService:
    def __init__(
        self, redis: Redis, keys: Keys, parts: AdminParts, throttle: SignInThrottle
    ) -> None:
        self.redis = redis
        self.keys = keys
        #: Accounts, invites, sign-ins, run-time settings and the audit log.
        self.parts = parts
        self.throttle = throttle
        self._hasher = PasswordHasher()
        self._dummy_hash: str | None = None

    async def signup_mode(self) -> SignupMode:
        return await self.parts.runtime.signup_mode()

    async def hash_password(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def has_users(self) -> bool:
        return int(await self.redis.get(self.keys.user_count()) or 0) > 0

    async def signup(
        self, creds: SignupRequest, *, address: str, user_agent: str | None = None
    ) -> Session:
        name = creds.username.strip()
        check_username(name)
        check_new_password(creds.password)
        # The first account can always be made (it is the admin).
        taken = await self._admit(name, creds.invite) if await self.has_users() else None
        try:
            # Sign-up tells whether a name is taken (it must): probing names
            # through it counts against the address like a failed sign-in.
            attempt = await self.throttle.address_attempt(address)
            password_hash = await self.hash_password(creds.password)
            invite = taken.invite if taken else None
            user = await self.parts.accounts.create(
                name,
                password_hash,
                is_admin=bool(invite and invite.is_admin),
                groups=invite.groups if invite else None,
                created_by=f"invite:{invite.id}" if invite else "",
            )
        except BaseException:
            if taken is not None:
                await self.parts.invites.give_back(taken)
            raise
        await self.throttle.refund_address(attempt)
        if taken is not None:
            await self.parts.audit.record(
                "invite.used",
                actor=Party(id=user.id, name=user.username),
                address=address,
                invite=taken.invite.id,
            )
        return Session(token=await self.parts.signins.create(user.id, user_agent), user=user)

    async def _admit(self, name: str, invite: str | None) -> TakenInvite | None:
        """Whether a new account may be made now: by the sign-up mode, and
        the invite (taken, used up) if one is given."""
        mode = await self.signup_mode()
        if mode == "closed":
            raise ApiError("forbidden", "sign-up is closed on this server; ask its admin")
        if invite is None:
            if mode == "invite_only":
                raise ApiError(
                    "forbidden", "sign-up needs an invite link on this server; ask its admin"
                )
            return None
        taken = await self.parts.invites.take(invite)
        if taken is None:
            raise ApiError("forbidden", "this invite link does not work any more (used or expired)")
        wanted = taken.invite.username
        if wanted and wanted.casefold() != name.casefold():
            await self.parts.invites.give_back(taken)
            raise ApiError("bad_request", f"this invite is for the username {wanted!r}")
        return taken

    async def login(
        self, creds: Credentials, *, address: str, user_agent: str | None = None
    ) -> Session:
        username = creds.username.strip().casefold()
        attempt = await self.throttle.attempt(username, address)
        # Casts: redis-py types replies as bytes | str; our client decodes them.
        uid = cast("str | None", await self.redis.hget(self.keys.usernames(), username))
        # Read an account either way (a missing one reads empty): the same steps.
        record = cast(dict[str, str], await self.redis.hgetall(self.keys.user(uid or "-")))
        stored = record.get("password_hash") if uid else None
        # No such account: the same argon2 work as a wrong password.
        verified = await self._verify(stored or await self._dummy(), creds.password)
        if not uid or not stored or not verified or record.get("deleting") == "1":
            await self._failed(attempt, uid, record, address)
            raise ApiError("unauthorized", WRONG_CREDENTIALS)
        await self.throttle.succeeded(attempt)
        if record.get("disabled") == "1":
            await self.parts.audit.record(
                "signin.disabled_account",
                target=Party(id=uid, name=record["username"]),
                address=address,
            )
            raise ApiError(
                "account_disabled",
                "this account has been disabled by an admin; ask them to enable it",
                status=403,
            )
        pipe = self.redis.pipeline(transaction=False)
        if self._hasher.check_needs_rehash(stored):
            new_hash = await self.hash_password(creds.password)
            pipe.hset(self.keys.user(uid), "password_hash", new_hash)
        pipe.hset(self.keys.user(uid), "last_login_at", str(time.time()))
        await pipe.execute()
        token = await self.parts.signins.create(uid, user_agent)
        return Session(token=token, user=user_info(uid, record))

    async def _failed(
        self, attempt: Attempt, uid: str | None, record: dict[str, str], address: str
    ) -> None:
        """A wrong password: a burst of failures or a lockout goes in the
        audit log (naming the account only if it exists: a name typed may be
        someone's password)."""
        target = Party(id=uid, name=record.get("username", "")) if uid and record else None
        for lock in self.throttle.lockouts(attempt):
            await self.parts.audit.record(
                "signin.lockout" if lock.locked_s else "signin.failures",
                target=target if lock.scope == "account" else None,
                address=address,
                scope=lock.scope,
                failures=lock.failures,
                locked_s=lock.locked_s,
                account="existing" if target else "unknown name",
            )

    async def change_password(
        self, user: UserInfo, token: str, change: PasswordChange, *, address: str
    ) -> int:
        """Set a new password (the current one must be right) and end every
        other sign-in of the account; returns how many were ended."""
        check_new_password(change.new_password)
        # A stolen session must not be a way to guess the password unthrottled.
        attempt = await self.throttle.attempt(user.username, address)
        stored = cast("str | None", await self.redis.hget(self.keys.user(user.id), "password_hash"))
        if not stored or not await self._verify(stored, change.current_password):
            raise ApiError("unauthorized", "the current password is wrong")
        await self.throttle.succeeded(attempt)
        new_hash = await self.hash_password(change.new_password)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(
            self.keys.user(user.id),
            mapping={"password_hash": new_hash, "credentials_changed_at": str(time.time())},
        )
        pipe.hdel(self.keys.user(user.id), "must_change_password")
        await pipe.execute()
        return await self.parts.signins.revoke_all_but(user.id, token_hash(token))

    async def _verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def prepare(self) -> None:
        """Hash the dummy password at start-up, not on the first unknown name
        (which would then take twice as long as any other)."""
        await self._dummy()

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def logout(self, token: str) -> None:
        digest = token_hash(token)
        uid = cast("str | None", await self.redis.get(self.keys.auth_token(digest)))
        if uid:
            await self.parts.signins.revoke(uid, [digest])

    async def signed_in(self, token: str) -> bool:
        """Whether the token is (still) a sign-in: one command."""
        return bool(await self.redis.exists(self.keys.auth_token(token_hash(token))))

    async def user_for_token(
        self, token: str | None, user_agent: str | None = None
    ) -> UserInfo | None:
        if not token or len(token) > 256:
            return None
        digest = token_hash(token)
        uid = cast("str | None", await self.redis.get(self.keys.auth_token(digest)))
        if not uid:
            return None
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.user(uid))
        pipe.hget(self.keys.signins(uid), digest)
        account, raw_record = await pipe.execute()
        if not usable(account):
            return None  # no such account, disabled or being deleted
        record = SignInRecord.model_validate_json(raw_record) if raw_record else None
        if record is None and account.get("credentials_changed_at"):
            # A token from before sign-ins were recorded, and the password has
            # changed since: it must not outlive the change.
            await self.parts.signins.revoke(uid, [digest])
            return None
        if record is None or self.parts.signins.touch_due(digest):
            await self.parts.signins.touch(uid, digest, record, user_agent)
        return user_info(uid, account)


def check_username(name: str) -> None:
    if not _USERNAME_RE.match(name):
        raise ApiError(
            "bad_request", "username must be 3-32 letters, digits, dots, dashes or underscores"
        )


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ApiError("bad_request", f"password must be at least {MIN_PASSWORD_CHARS} characters")


def token_from(headers_authorization: str | None, cookie: str | None) -> str | None:
    """The sign-in token of a request: bearer header first, then the cookie."""
    if headers_authorization:
        scheme, _, value = headers_authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return cookie or None
