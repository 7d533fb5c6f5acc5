"""Accounts and sign-in sessions, stored in Redis.

Passwords are hashed with argon2id (argon2-cffi's defaults), off the event
loop because a hash costs tens of milliseconds by design. A sign-in is a
random token: the browser gets it in an HttpOnly cookie, scripts send it as
``Authorization: Bearer``. Only its SHA-256 is stored, so a copy of the
database does not let anyone sign in.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from typing import Annotated, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from gateway.errors import ApiError
from shared.conversation import new_id
from shared.keys import AUTH_TOKEN_TTL_S, Keys
from shared.protocol import UserInfo

COOKIE_NAME = "tc_session"
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"
_USERNAME_RE = re.compile(USERNAME_PATTERN)


class Credentials(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class Session(BaseModel):
    token: str
    user: UserInfo


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(self, redis: Redis, keys: Keys, *, signup_open: bool) -> None:
        self.redis = redis
        self.keys = keys
        self.signup_open = signup_open
        self._hasher = PasswordHasher()

    async def has_users(self) -> bool:
        return int(await self.redis.get(self.keys.user_count()) or 0) > 0

    async def signup(self, creds: Credentials) -> Session:
        name = creds.username.strip()
        if not _USERNAME_RE.match(name):
            raise ApiError(
                "bad_request", "username must be 3-32 letters, digits, dots, dashes or underscores"
            )
        if len(creds.password) < 8:
            raise ApiError("bad_request", "password must be at least 8 characters")
        if not self.signup_open and await self.has_users():
            raise ApiError("forbidden", "sign-up is closed on this server; ask its admin")
        password_hash = await asyncio.to_thread(self._hasher.hash, creds.password)
        uid = new_id()
        if not await self.redis.hsetnx(self.keys.usernames(), name.casefold(), uid):
            raise ApiError("bad_request", f"the username {name!r} is taken", status=409)
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
        return await self._start_session(user)

    async def login(self, creds: Credentials) -> Session:
        # Casts: redis-py types replies as bytes | str; our client decodes them.
        username = creds.username.strip().casefold()
        uid = cast("str | None", await self.redis.hget(self.keys.usernames(), username))
        record = cast(dict[str, str], await self.redis.hgetall(self.keys.user(uid))) if uid else {}
        stored = record.get("password_hash")
        if not uid or not stored or not await self._verify(stored, creds.password):
            raise ApiError("unauthorized", "wrong username or password")
        if self._hasher.check_needs_rehash(stored):
            new_hash = await asyncio.to_thread(self._hasher.hash, creds.password)
            await self.redis.hset(self.keys.user(uid), "password_hash", new_hash)
        return await self._start_session(_user(uid, record))

    async def _verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _start_session(self, user: UserInfo) -> Session:
        token = secrets.token_urlsafe(32)
        await self.redis.set(self.keys.auth_token(_token_hash(token)), user.id, ex=AUTH_TOKEN_TTL_S)
        return Session(token=token, user=user)

    async def logout(self, token: str) -> None:
        await self.redis.delete(self.keys.auth_token(_token_hash(token)))

    async def user_for_token(self, token: str | None) -> UserInfo | None:
        if not token or len(token) > 256:
            return None
        uid = cast("str | None", await self.redis.get(self.keys.auth_token(_token_hash(token))))
        if not uid:
            return None
        record = cast(dict[str, str], await self.redis.hgetall(self.keys.user(uid)))
        return _user(uid, record) if record else None


def _user(uid: str, record: dict[str, str]) -> UserInfo:
    return UserInfo(id=uid, username=record["username"], is_admin=record.get("is_admin") == "1")


def token_from(headers_authorization: str | None, cookie: str | None) -> str | None:
    """The sign-in token of a request: bearer header first, then the cookie."""
    if headers_authorization:
        scheme, _, value = headers_authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return cookie or None
