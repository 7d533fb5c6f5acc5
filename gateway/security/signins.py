"""Sign-ins: the tokens a user is signed in with, listable and revocable.

A sign-in is a random token; Redis holds only its SHA-256: the key
``auth(hash)`` names the user (what every request looks up) and the user's
``signins`` hash keeps, per token hash, a record to show them (a public id,
created, last used, user agent). Revoking deletes both and publishes the
hash on the revocation channel, so every gateway ends the sockets and
streams still open with it (``revocation.py``).

Tokens made before sign-ins were recorded are adopted when next used,
unless the account's credentials changed since (then they are refused: a
password change must end every earlier sign-in).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import cast

from pydantic import BaseModel
from redis.asyncio import Redis

from shared.keys import AUTH_TOKEN_TTL_S, MAX_SIGNINS_PER_USER, SIGNIN_TOUCH_INTERVAL_S, Keys

#: Longest user agent kept (they are shown, not parsed).
USER_AGENT_MAX_CHARS = 200
#: Recent "last used" writes remembered per process, to write at most one a minute.
_TOUCHED_MAX = 100_000


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A secret token (shown once, never stored) and the hash it is stored by."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def public_id() -> str:
    """A short id a secret is listed by (never the secret or its hash)."""
    return secrets.token_urlsafe(9)


class SignInRecord(BaseModel):
    id: str
    created_at: float
    last_used_at: float
    user_agent: str = ""


class SignInView(SignInRecord):
    """What ``GET /api/auth/sessions`` lists; ``current``: the caller's own."""

    current: bool = False


class SignIns:
    def __init__(self, redis: Redis, keys: Keys, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.keys = keys
        self._clock = clock
        self._touched: dict[str, float] = {}

    async def create(self, uid: str, user_agent: str | None) -> str:
        """A new sign-in for ``uid``; returns its token (never stored)."""
        token, digest = new_token()
        now = self._clock()
        record = SignInRecord(
            id=public_id(),
            created_at=now,
            last_used_at=now,
            user_agent=(user_agent or "")[:USER_AGENT_MAX_CHARS],
        )
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.auth_token(digest), uid, ex=AUTH_TOKEN_TTL_S)
        pipe.hset(self.keys.signins(uid), digest, record.model_dump_json())
        pipe.expire(self.keys.signins(uid), AUTH_TOKEN_TTL_S)
        # The account's last activity, for the admin console (kept when the
        # sign-in itself is revoked).
        pipe.hset(self.keys.user(uid), "last_active_at", str(now))
        await pipe.execute()
        self._touched[digest] = now
        await self._prune(uid)
        return token

    async def records(self, uid: str) -> dict[str, SignInRecord]:
        """The user's live sign-ins by token hash (expired ones are dropped)."""
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.signins(uid)))
        if not raw:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for digest in raw:
            pipe.exists(self.keys.auth_token(digest))
        alive = await pipe.execute()
        gone = [d for d, ok in zip(raw, alive, strict=True) if not ok]
        if gone:
            await self.redis.hdel(self.keys.signins(uid), *gone)
        return {
            d: SignInRecord.model_validate_json(v)
            for (d, v), ok in zip(raw.items(), alive, strict=True)
            if ok
        }

    async def _prune(self, uid: str) -> None:
        records = await self.records(uid)
        if len(records) <= MAX_SIGNINS_PER_USER:
            return
        by_use = sorted(records, key=lambda d: records[d].last_used_at)
        await self.revoke(uid, by_use[: len(records) - MAX_SIGNINS_PER_USER])

    async def record(self, uid: str, digest: str) -> SignInRecord | None:
        raw = cast("str | None", await self.redis.hget(self.keys.signins(uid), digest))
        return SignInRecord.model_validate_json(raw) if raw else None

    def touch_due(self, digest: str) -> bool:
        last = self._touched.get(digest)
        return last is None or self._clock() - last >= SIGNIN_TOUCH_INTERVAL_S

    async def touch(
        self, uid: str, digest: str, record: SignInRecord | None, user_agent: str | None
    ) -> None:
        """Write "last used" (at most once a minute per process); adopt a
        token that has no record yet."""
        now = self._clock()
        if record is None:
            record = SignInRecord(id=secrets.token_urlsafe(9), created_at=now, last_used_at=now)
        record = record.model_copy(
            update={
                "last_used_at": now,
                "user_agent": (user_agent or record.user_agent)[:USER_AGENT_MAX_CHARS],
            }
        )
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.signins(uid), digest, record.model_dump_json())
        pipe.expire(self.keys.signins(uid), AUTH_TOKEN_TTL_S)
        pipe.hset(self.keys.user(uid), "last_active_at", str(now))
        await pipe.execute()
        if len(self._touched) > _TOUCHED_MAX:
            cutoff = now - SIGNIN_TOUCH_INTERVAL_S
            self._touched = {k: v for k, v in self._touched.items() if v > cutoff}
        self._touched[digest] = now

    async def revoke(self, uid: str, digests: Iterable[str], reason: str | None = None) -> int:
        """End these sign-ins everywhere: no request or socket uses them again.
        ``reason`` is what their sockets and streams are told (default: signed out)."""
        digests = list(digests)
        if not digests:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for digest in digests:
            pipe.delete(self.keys.auth_token(digest))
        pipe.hdel(self.keys.signins(uid), *digests)
        message: object = digests if reason is None else {"tokens": digests, "reason": reason}
        pipe.publish(self.keys.revoked_channel(), json.dumps(message))
        await pipe.execute()
        for digest in digests:
            self._touched.pop(digest, None)
        return len(digests)

    async def revoke_all_but(self, uid: str, keep: str | None) -> int:
        records = await self.records(uid)
        return await self.revoke(uid, (d for d in records if d != keep))

    async def revoke_all(self, uid: str, reason: str) -> int:
        """End every sign-in of the account (disabled, password reset by an
        admin, deleted): every gateway closes their sockets and streams with
        ``reason``. A token with no record yet (made before records existed)
        is refused on its next use by the account's state, and any socket
        using one has adopted a record when it was admitted."""
        records = await self.records(uid)
        return await self.revoke(uid, records, reason)

    async def revoke_public_id(self, uid: str, public_id: str) -> str | None:
        """Revoke the sign-in the user knows as ``public_id``; its token hash,
        or None when the user has no such sign-in."""
        wanted = public_id.encode()  # compare_digest refuses non-ASCII str
        for digest, record in (await self.records(uid)).items():
            if secrets.compare_digest(record.id.encode(), wanted):
                await self.revoke(uid, [digest])
                return digest
        return None
