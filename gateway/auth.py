"""Accounts and sign-ins, stored in Redis.

Passwords are hashed with argon2id (argon2-cffi's defaults), off the event
loop because a hash costs tens of milliseconds by design. A sign-in is a
random token: the browser gets it in an HttpOnly cookie, scripts send it as
``Authorization: Bearer``. Only its SHA-256 is stored, so a copy of the
database does not let anyone sign in (``security/signins.py``).

Guessing is throttled per account and per client address
(``security/throttle.py``). A name that does not exist is answered exactly
like a wrong password, after checking the password against a dummy hash, so
neither the answer nor its timing tells which names exist.
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

from gateway.errors import ApiError
from gateway.security.signins import SignInRecord, SignIns, token_hash
from gateway.security.throttle import SignInThrottle
from shared.conversation import new_id
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


class PasswordChange(BaseModel):
    current_password: Annotated[str, Field(min_length=1, max_length=256)]
    new_password: Annotated[str, Field(min_length=1, max_length=256)]


class Session(BaseModel):
    token: str
    user: UserInfo


class AuthService:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        signup_open: bool,
        throttle: SignInThrottle,
        signins: SignIns,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.signup_open = signup_open
        self.throttle = throttle
        self.signins = signins
        self._hasher = PasswordHasher()
        self._dummy_hash: str | None = None

    async def has_users(self) -> bool:
        return int(await self.redis.get(self.keys.user_count()) or 0) > 0

    async def signup(
        self, creds: Credentials, *, address: str, user_agent: str | None = None
    ) -> Session:
        name = creds.username.strip()
        if not _USERNAME_RE.match(name):
            raise ApiError(
                "bad_request", "username must be 3-32 letters, digits, dots, dashes or underscores"
            )
        _check_new_password(creds.password)
        if not self.signup_open and await self.has_users():
            raise ApiError("forbidden", "sign-up is closed on this server; ask its admin")
        # Sign-up tells whether a name is taken (it must): probing names through
        # it counts against the address like a failed sign-in.
        attempt = await self.throttle.address_attempt(address)
        password_hash = await asyncio.to_thread(self._hasher.hash, creds.password)
        uid = new_id()
        if not await self.redis.hsetnx(self.keys.usernames(), name.casefold(), uid):
            raise ApiError("bad_request", f"the username {name!r} is taken", status=409)
        await self.throttle.refund_address(attempt)
        number = await self.redis.incr(self.keys.user_count())
        user = UserInfo(id=uid, username=name, is_admin=number == 1)
        await self.redis.hset(
            self.keys.user(uid),
            mapping={
                "username": name,
                "password_hash": password_hash,
                "is_admin": "1" if user.is_admin else "0",
                "created_at": str(time.time()),
            },
        )
        return Session(token=await self.signins.create(uid, user_agent), user=user)

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
        if not uid or not stored or not verified:
            raise ApiError("unauthorized", WRONG_CREDENTIALS)
        await self.throttle.succeeded(attempt)
        if self._hasher.check_needs_rehash(stored):
            new_hash = await asyncio.to_thread(self._hasher.hash, creds.password)
            await self.redis.hset(self.keys.user(uid), "password_hash", new_hash)
        token = await self.signins.create(uid, user_agent)
        return Session(token=token, user=_user(uid, record))

    async def change_password(
        self, user: UserInfo, token: str, change: PasswordChange, *, address: str
    ) -> int:
        """Set a new password (the current one must be right) and end every
        other sign-in of the account; returns how many were ended."""
        _check_new_password(change.new_password)
        # A stolen session must not be a way to guess the password unthrottled.
        attempt = await self.throttle.attempt(user.username, address)
        stored = cast("str | None", await self.redis.hget(self.keys.user(user.id), "password_hash"))
        if not stored or not await self._verify(stored, change.current_password):
            raise ApiError("unauthorized", "the current password is wrong")
        await self.throttle.succeeded(attempt)
        new_hash = await asyncio.to_thread(self._hasher.hash, change.new_password)
        await self.redis.hset(
            self.keys.user(user.id),
            mapping={"password_hash": new_hash, "credentials_changed_at": str(time.time())},
        )
        return await self.signins.revoke_all_but(user.id, token_hash(token))

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
            await self.signins.revoke(uid, [digest])

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
        if not account:
            return None
        record = SignInRecord.model_validate_json(raw_record) if raw_record else None
        if record is None and account.get("credentials_changed_at"):
            # A token from before sign-ins were recorded, and the password has
            # changed since: it must not outlive the change.
            await self.signins.revoke(uid, [digest])
            return None
        if record is None or self.signins.touch_due(digest):
            await self.signins.touch(uid, digest, record, user_agent)
        return _user(uid, account)


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ApiError("bad_request", f"password must be at least {MIN_PASSWORD_CHARS} characters")


def _user(uid: str, record: dict[str, str]) -> UserInfo:
    return UserInfo(id=uid, username=record["username"], is_admin=record.get("is_admin") == "1")


def token_from(headers_authorization: str | None, cookie: str | None) -> str | None:
    """The sign-in token of a request: bearer header first, then the cookie."""
    if headers_authorization:
        scheme, _, value = headers_authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return cookie or None
