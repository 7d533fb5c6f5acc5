"""Invite links: an admin makes one (optionally naming the account, its
groups, admin or not), the person who opens it chooses a password and has
an account. A link works once, until it expires.

The token travels in the link's fragment (``/invite#<token>``), which a
browser never sends to a server, so it reaches no access log; the web
client posts it in a request body. Redis holds only its SHA-256 (like
sign-ins): ``keys.invite(hash)`` with a TTL, indexed by expiry in
``keys.invites()`` for the console's list.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, cast

from pydantic import BaseModel
from redis.asyncio import Redis

from gateway.security.signins import new_token, public_id, token_hash
from shared.keys import Keys

# KEYS[1]: the invite. Taken (read and deleted) in one step: used once,
# however many people open the link at the same moment. Returns its fields
# (flat) and its remaining TTL (ms), to put it back if the sign-up fails.
_TAKE = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return false end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
fields[#fields + 1] = '__ttl'
fields[#fields + 1] = tostring(ttl)
return fields
"""


class Invite(BaseModel):
    """An invite as the console lists it (never its token)."""

    id: str
    username: str | None = None
    is_admin: bool = False
    groups: list[str] = []
    created_by: str = ""
    created_at: float
    expires_at: float


class TakenInvite(BaseModel):
    invite: Invite
    digest: str
    ttl_ms: int


class Invites:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._take = redis.register_script(_TAKE)

    async def create(
        self,
        *,
        username: str | None,
        is_admin: bool,
        groups: list[str],
        created_by: str,
        ttl_s: int,
    ) -> tuple[str, Invite]:
        """A new invite; returns its token (shown once) and what it grants."""
        token, digest = new_token()
        now = time.time()
        invite = Invite(
            id=public_id(),
            username=username,
            is_admin=is_admin,
            groups=sorted(set(groups)),
            created_by=created_by,
            created_at=now,
            expires_at=now + ttl_s,
        )
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.invite(digest), mapping=cast(Any, _fields(invite)))
        pipe.expire(self.keys.invite(digest), ttl_s)
        pipe.zadd(self.keys.invites(), {digest: int(invite.expires_at * 1000)})
        await pipe.execute()
        return token, invite

    async def peek(self, token: str) -> Invite | None:
        if not token or len(token) > 256:
            return None
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.invite(token_hash(token))))
        return _invite(raw) if raw else None

    async def take(self, token: str) -> TakenInvite | None:
        """Use the invite up (None: no such invite, used or expired)."""
        if not token or len(token) > 256:
            return None
        digest = token_hash(token)
        flat = await self._take(keys=[self.keys.invite(digest)])
        if not flat:
            return None
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        ttl = int(raw.pop("__ttl"))
        await self.redis.zrem(self.keys.invites(), digest)
        return TakenInvite(invite=_invite(raw), digest=digest, ttl_ms=ttl)

    async def give_back(self, taken: TakenInvite) -> None:
        """The sign-up failed after the invite was taken (name taken): it works again."""
        if taken.ttl_ms <= 0:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.invite(taken.digest), mapping=cast(Any, _fields(taken.invite)))
        pipe.pexpire(self.keys.invite(taken.digest), taken.ttl_ms)
        pipe.zadd(self.keys.invites(), {taken.digest: int(taken.invite.expires_at * 1000)})
        await pipe.execute()

    async def list(self) -> list[tuple[str, Invite]]:
        """Live invites (token hash, invite), soonest to expire first."""
        now_ms = int(time.time() * 1000)
        await self.redis.zremrangebyscore(self.keys.invites(), "-inf", now_ms)
        digests = cast(list[str], await self.redis.zrange(self.keys.invites(), 0, -1))
        if not digests:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for digest in digests:
            pipe.hgetall(self.keys.invite(digest))
        rows = await pipe.execute()
        return [(d, _invite(raw)) for d, raw in zip(digests, rows, strict=True) if raw]

    async def revoke(self, public_id: str) -> Invite | None:
        wanted = public_id.encode()
        for digest, invite in await self.list():
            if secrets.compare_digest(invite.id.encode(), wanted):
                pipe = self.redis.pipeline(transaction=False)
                pipe.delete(self.keys.invite(digest))
                pipe.zrem(self.keys.invites(), digest)
                await pipe.execute()
                return invite
        return None


def _fields(invite: Invite) -> dict[str, str]:
    return {
        "id": invite.id,
        "username": invite.username or "",
        "is_admin": "1" if invite.is_admin else "0",
        "groups": json.dumps(invite.groups),
        "created_by": invite.created_by,
        "created_at": str(invite.created_at),
        "expires_at": str(invite.expires_at),
    }


def _invite(raw: dict[str, str]) -> Invite:
    return Invite(
        id=raw["id"],
        username=raw.get("username") or None,
        is_admin=raw.get("is_admin") == "1",
        groups=json.loads(raw.get("groups") or "[]"),
        created_by=raw.get("created_by", ""),
        created_at=float(raw["created_at"]),
        expires_at=float(raw["expires_at"]),
    )
