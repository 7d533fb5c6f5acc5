"""One WebSocket's connection once it is admitted (``gateway/routes/ws.py``):
one task reads the client's frames and acts on them, one sends it, in order,
its session events (from the multiplexed reader), the user's feed and
followed turns (``gateway/live.py``) and the direct replies (``hello``,
``pong``, errors about a bad frame)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from gateway.deps import Services
from gateway.errors import STORAGE_FULL, ApiError, is_storage_full
from gateway.frames import (
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    STORAGE_DOWN,
    FrameError,
    error_frame,
    parse_frame,
)
from gateway.live import LiveSync
from gateway.security.revocation import Watch
from gateway.subscriber import OutgoingEvent, Subscriber, next_of
from gateway.tool_approvals import approve
from shared.protocol import (
    DELIVERY_FIELDS,
    ApproveFrame,
    EditFrame,
    HelloEvent,
    MessageFrame,
    PingFrame,
    PongEvent,
    RegenerateFrame,
    ResumeFrame,
    StopFrame,
    UserInfo,
    WatchFrame,
)

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Connection:
    """One socket's session: hello, then its frames acted on in order while
    a second task sends it its events (``_send_loop``)."""

    ws: WebSocket
    services: Services
    user: UserInfo
    session_id: str
    #: What was wrong with the connection's parameters: told after hello.
    problem: str | None = None
    #: Set when this socket's sign-in is revoked: it closes, and no frame
    #: that arrives meanwhile is acted on.
    watch: Watch | None = None
    sub: Subscriber | None = field(default=None, init=False)
    #: Set when any of the socket's subscribers has something to send.
    ready: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    live: LiveSync = field(init=False)

    def __post_init__(self) -> None:
        services = self.services
        self.live = LiveSync(
            services.redis,
            services.hub,
            services.owners,
            services.store,
            services.turns.keys,
            user_id=self.user.id,
            session_id=self.session_id,
            ready=self.ready,
        )

    @property
    def revoked(self) -> bool:
        return self.watch is not None and self.watch.revoked.is_set()

    async def _close_when_revoked(self, watch: Watch) -> None:
        await watch.revoked.wait()
        with contextlib.suppress(Exception):
            await self.ws.send_text(error_frame("unauthorized", watch.reason))
            await self.ws.close(CLOSE_UNAUTHORIZED, "signed out")

    async def _receive(self) -> str | None:
        """The next text frame; None for a binary one. Raises on disconnect."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        return message.get("text")

    def _offer(self, frame: str) -> None:
        assert self.sub is not None
        self.sub.say(frame)

    async def serve(self) -> None:
        guard = None
        if self.watch is not None:
            guard = asyncio.create_task(self._close_when_revoked(self.watch), name="ws-revoked")
        try:
            await self._serve()
        finally:
            if guard is not None:
                guard.cancel()

    async def _serve(self) -> None:
        services = self.services
        hello = HelloEvent(session=self.session_id, user=self.user)
        await self.ws.send_text(hello.model_dump_json(exclude=DELIVERY_FIELDS))
        if self.problem is not None:
            await self.ws.send_text(error_frame("bad_request", self.problem))
        first_text = await self._receive()
        frame: Any = None
        problem: FrameError | None = None
        try:
            frame = parse_frame(first_text) if first_text is not None else None
            if first_text is None:
                problem = FrameError("frames are JSON text, not binary")
        except FrameError as exc:
            problem = exc
        # Delivery starts where a first `resume` says, else at the live end.
        after = frame.after if isinstance(frame, ResumeFrame) else None
        feed_after = frame.feed_after if isinstance(frame, ResumeFrame) else None
        if after is not None:
            services.sockets.resumed()
        try:
            self.sub = await services.hub.subscribe(self.session_id, after, self.ready)
            await self.live.start(feed_after)
        except RedisError as exc:
            if self.sub is not None:
                services.hub.unsubscribe(self.sub)
            # No session stream, no delivery: the client reconnects and
            # resumes once Redis is back (the frame was not acted on).
            log.warning("cannot follow a session: %s", exc)
            client_id = getattr(frame, "client_id", None)
            await self.ws.send_text(error_frame("internal", STORAGE_DOWN, client_id=client_id))
            await self.ws.close(CLOSE_TRY_AGAIN, "storage unavailable; reconnect and resume")
            return
        sender = asyncio.create_task(self._send_loop(), name="ws-sender")
        try:
            if problem is not None:
                self._offer(
                    error_frame("bad_request", problem.message, client_id=problem.client_id)
                )
            elif not isinstance(frame, ResumeFrame):
                await self._handle(frame)
            while not sender.done():
                text = await self._receive()
                if text is None:
                    self._offer(error_frame("bad_request", "frames are JSON text, not binary"))
                    continue
                try:
                    frame = parse_frame(text)
                except FrameError as exc:
                    self._offer(error_frame("bad_request", exc.message, client_id=exc.client_id))
                    continue
                await self._handle(frame)
        finally:
            services.hub.unsubscribe(self.sub)
            self.live.close()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _handle(self, frame: Any) -> None:
        if self.revoked:
            return
        turns = self.services.turns
        client_id = getattr(frame, "client_id", None)
        try:
            if isinstance(frame, MessageFrame):
                await turns.message(self.user, self.session_id, frame)
            elif isinstance(frame, RegenerateFrame):
                await turns.regenerate(self.user, self.session_id, frame)
            elif isinstance(frame, EditFrame):
                await turns.edit(self.user, self.session_id, frame)
            elif isinstance(frame, StopFrame):
                await turns.stop(self.user, frame)
            elif isinstance(frame, ResumeFrame):
                self.services.sockets.resumed()
                assert self.sub is not None
                await self.services.hub.reposition(self.sub, frame.after)
                if frame.feed_after is not None:
                    await self.live.reposition(frame.feed_after)
            elif isinstance(frame, WatchFrame):
                await self.live.watch(frame.conversation_id)
            elif isinstance(frame, PingFrame):
                self._offer(PongEvent().model_dump_json(exclude=DELIVERY_FIELDS))
            elif isinstance(frame, ApproveFrame):  # tools (issue 15)
                await approve(self.services.redis, self.services.settings.keys, self.user, frame)
        except ApiError as exc:
            self._offer(
                error_frame(
                    exc.code,  # type: ignore[arg-type]
                    exc.message,
                    client_id=client_id,
                    conversation_id=getattr(frame, "conversation_id", None),
                    retry_after=exc.retry_after,
                    current_id=exc.current_id,
                )
            )
        except RedisError as exc:
            if is_storage_full(exc):  # maxmemory reached: writes are refused
                log.warning("storage full: a %s frame was refused", frame.type)
                self._offer(error_frame("storage_full", STORAGE_FULL, client_id=client_id))
                return
            log.exception("storage failed while handling a %s frame", frame.type)
            self._offer(error_frame("internal", STORAGE_DOWN, client_id=client_id))

    def _subscribers(self) -> list[Subscriber]:
        assert self.sub is not None
        return [self.sub, *self.live.subscribers()]

    async def _send_loop(self) -> None:
        # A client that stops reading is cut off by the server's WebSocket
        # protocol after TIDECHAT_SOCKET_WRITE_TIMEOUT_SECONDS (gateway/serve.py).
        assert self.sub is not None
        while True:
            # The session's own events first, then the feed and followed turns.
            sub, item = await next_of(self._subscribers, self.ready)
            if item is None:
                # Left direct frames unread past the budget: reconnect and resume.
                await self.ws.close(CLOSE_TRY_AGAIN, "too far behind; reconnect and resume")
                return
            if not isinstance(item, OutgoingEvent):
                await self.ws.send_text(item)
                continue
            await self.ws.send_text(item.frame)
            if sub.kind != "session" and not self.revoked:
                await self.live.sent(sub, item)
