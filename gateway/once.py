"""Acting on a frame once, however often a client sends it.

A client that lost its socket resends what it did not see acknowledged, with
the same ``client_id``. The frame's marker (``client_frame``: session and
``client_id``) is a key in the *conversation's* hash slot, so it is set in
the same script that stores the user's message (``lua.ADD``): a resend finds
it and writes nothing, and a frame whose message was never stored left no
marker, so its resend is acted on. A frame that starts a new conversation
has no conversation id yet; with a ``client_id`` its id is derived from the
session and the ``client_id``, so a resend names the same conversation and
meets the same marker. (A ``regenerate`` stores no message: its marker is
set on its own, just before the turn is queued.)

What follows the message (its events and the turn, on the session's and
the pool's keys: other slots) is one pipeline after it. Should the gateway
die in between, the message is stored without a reply, and the resend is
ignored: the user sees their message, unanswered, and can ask again
(``regenerate`` names a user message too); nothing they typed is lost.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from shared.keys import CLIENT_ID_TTL_S, Keys


def conversation_id_for(session_id: str, client_id: str) -> str:
    """The id of the conversation a frame with ``client_id`` starts: the same
    for every resend of it. (Sessions belong to one user each, so two users
    never derive the same id.)"""
    digest = hashlib.sha256(f"tidechat-conversation\0{session_id}\0{client_id}".encode())
    return digest.hexdigest()[:32]


class FrameGuard:
    """The markers of frames acted on, in their conversation's slot."""

    ttl = CLIENT_ID_TTL_S

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def key(self, cid: str, session_id: str, client_id: str | None) -> str | None:
        return None if client_id is None else self.keys.client_frame(cid, session_id, client_id)

    async def seen(self, key: str | None) -> bool:
        """Whether the frame was acted on already."""
        return key is not None and bool(await self.redis.exists(key))

    async def claim(self, key: str | None, value: str) -> bool:
        """Mark a frame that stores no message (a regenerate) as acted on;
        False when it was already."""
        if key is None:
            return True
        return bool(await self.redis.set(key, value, nx=True, ex=self.ttl))
