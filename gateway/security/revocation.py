"""Revoked sign-ins reach live connections on every gateway.

A request is checked once, when it arrives; a WebSocket or an SSE stream
lives on for hours. So every connection registers the hash of the token it
signed in with, and each gateway process keeps ONE pub/sub subscription to
the revocation channel (not one per socket): when a sign-in is revoked
anywhere (log-out, password change, a sign-in ended from the account page,
an admin disabling the account or resetting its password), its hash is published
(with the reason, for an admin's action) and every connection
registered with it is told at once; nothing else is touched.

Pub/sub delivers nothing while the subscription is down, so after each
(re)subscription every registered token is checked again in Redis: one
revoked while this gateway was not listening is caught then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.aio import cancel_and_wait
from shared.keys import Keys

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Watch:
    """One connection's registration. ``revoked`` is set when its sign-in
    ends; ``on_revoke`` callbacks run then (in the event loop, without awaiting)."""

    token_hash: str
    revoked: asyncio.Event = field(default_factory=asyncio.Event)
    on_revoke: list[Callable[[], None]] = field(default_factory=list)
    #: What the connection is told: "signed out", or why (an admin disabled
    #: the account, reset its password...).
    reason: str = "you have been signed out"

    def fire(self, reason: str | None = None) -> None:
        if self.revoked.is_set():
            return
        if reason:
            self.reason = reason
        self.revoked.set()
        for callback in self.on_revoke:
            try:
                callback()
            except Exception:
                log.exception("a revocation callback failed")


class Revocations:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._watches: dict[str, set[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self.revoked_connections = 0

    @property
    def watched(self) -> int:
        return sum(len(w) for w in self._watches.values())

    def watch(self, token_hash: str) -> Watch:
        """Register a connection before its token is checked: a revocation
        published in between is then not missed."""
        w = Watch(token_hash)
        self._watches.setdefault(token_hash, set()).add(w)
        return w

    def unwatch(self, w: Watch) -> None:
        watches = self._watches.get(w.token_hash)
        if watches is not None:
            watches.discard(w)
            if not watches:
                del self._watches[w.token_hash]

    def revoke_local(self, token_hashes: list[str], reason: str | None = None) -> None:
        for digest in token_hashes:
            for w in list(self._watches.get(digest, ())):
                self.revoked_connections += 1
                w.fire(reason)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="revocations")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _recheck(self) -> None:
        """After (re)subscribing: tokens revoked while nobody listened."""
        digests = list(self._watches)
        if not digests:
            return
        pipe = self._redis.pipeline(transaction=False)
        for digest in digests:
            pipe.exists(self._keys.auth_token(digest))
        alive = await pipe.execute()
        self.revoke_local([d for d, ok in zip(digests, alive, strict=True) if not ok])

    def _handle(self, message: object) -> None:
        """A list of token hashes (signed out), or ``{"tokens", "reason"}``
        (an admin's action, with the reason the connections are told)."""
        if isinstance(message, list):
            self.revoke_local([str(d) for d in message])
        elif isinstance(message, dict) and isinstance(message.get("tokens"), list):
            reason = message.get("reason")
            self.revoke_local([str(d) for d in message["tokens"]], str(reason) if reason else None)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._keys.revoked_channel())
                self.subscribed.set()
                await self._recheck()
                backoff = 0.1
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    with contextlib.suppress(ValueError, TypeError):
                        self._handle(json.loads(msg["data"]))
            except (RedisConnectionError, RedisTimeoutError, OSError, RedisError) as exc:
                self.subscribed.clear()
                log.warning("revocation channel lost (%s); resubscribing in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.subscribed.clear()
                # redis-py leaves PubSub.aclose unannotated.
                await pubsub.aclose()  # type: ignore[no-untyped-call]
