"""Who may read a session's event stream: the user who used it first.

A session id is chosen by the client (a tab) and carries everything said
in that tab, so knowing one must not be enough to read it. The first use
(a socket connecting with it, or ``POST /api/chat`` making one) records its
owner; every later use by another user is refused (``forbidden``, close
4403) before any event is delivered. The owner record has the session
stream's TTL plus a margin and is refreshed in the same commands as the
stream's, so it never expires while the stream lives.

A stream found without an owner (written before owners were recorded, or
its owner record lost) is deleted when its id is first claimed: its events
belong to someone unknown, so the new claimant starts from nothing.
(Until the storage issue renames session streams to ``tc:session:{sid}``,
the script's two keys hash to different cluster slots; the owner key
already carries the session id as its hash tag.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from shared.keys import SESSION_OWNER_GRACE_S, Keys

#: The web client names its session in ``Sec-WebSocket-Protocol`` (offering
#: ``tidechat`` and ``tidechat.session.<sid>``), not in the URL, so the id
#: stays out of proxy and server logs; scripts may still use ``?session=``.
SUBPROTOCOL = "tidechat"
SESSION_SUBPROTOCOL_PREFIX = "tidechat.session."

# KEYS: owner, stream. ARGV: user id, owner TTL (s). 1: the caller owns it.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return 1
end
if owner == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class SessionOwners:
    def __init__(self, redis: Redis, keys: Keys, session_ttl: int) -> None:
        self.keys = keys
        self.session_ttl = session_ttl
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, session_id: str, user_id: str) -> bool:
        """Record ``user_id`` as the session's owner if it has none; whether
        ``user_id`` owns it."""
        owned = await self._claim(
            keys=[self.keys.session_owner(session_id), self.keys.session(session_id)],
            args=[user_id, self.session_ttl + SESSION_OWNER_GRACE_S],
        )
        return bool(owned)

    async def owns(self, session_id: str, user_id: str) -> bool:
        """Whether ``user_id`` owns the session (without claiming it): checked
        before a socket follows a turn on another session's stream."""
        owner = await self._redis.get(self.keys.session_owner(session_id))
        return owner is not None and owner == user_id


def queue_session_ttl(pipe: Any, keys: Keys, session_id: str, ttl: int) -> None:
    """(Re)set a session stream's TTL and, with it, its owner record's: the
    one way every path refreshes a session, so the two never drift apart."""
    pipe.expire(keys.session(session_id), ttl)
    pipe.expire(keys.session_owner(session_id), ttl + SESSION_OWNER_GRACE_S)


def session_from_subprotocols(offered: Sequence[str]) -> tuple[str | None, str | None]:
    """(the session id a client offered in ``Sec-WebSocket-Protocol``, the
    subprotocol to accept: ``tidechat`` if it was offered)."""
    session = next(
        (
            p.removeprefix(SESSION_SUBPROTOCOL_PREFIX)
            for p in offered
            if p.startswith(SESSION_SUBPROTOCOL_PREFIX)
        ),
        None,
    )
    return session, SUBPROTOCOL if SUBPROTOCOL in offered else None
