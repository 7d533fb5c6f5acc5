"""The WebSocket endpoint ``/ws``: one task reads the client's frames, one
sends it, in order, its session events (from the multiplexed reader) and
the direct replies (``hello``, ``pong``, errors about a bad frame)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.websockets import WebSocketState

from gateway.auth import COOKIE_NAME, token_from
from gateway.deps import Services
from gateway.errors import STORAGE_FULL, ApiError, describe_validation, is_storage_full
from gateway.jsonguard import too_deep
from gateway.security.revocation import Watch
from gateway.security.sessions import session_from_subprotocols
from gateway.security.signins import token_hash
from gateway.subscriber import Delivery, Subscriber
from shared.conversation import new_id
from shared.protocol import (
    EditFrame,
    ErrorCode,
    ErrorEvent,
    HelloEvent,
    MessageFrame,
    PingFrame,
    PongEvent,
    RegenerateFrame,
    ResumeFrame,
    StopFrame,
    UserInfo,
    client_frame_adapter,
)

log = logging.getLogger(__name__)
router = APIRouter()

#: Used with ``fullmatch``: ``$`` in ``match`` also matches before a final newline.
SESSION_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
#: Client frames are flat JSON objects; anything nested deeper is refused
#: before it is parsed (the parser recurses).
MAX_FRAME_DEPTH = 16
FRAME_TYPES = "message, regenerate, edit, stop, resume, ping"

#: Close codes: 1001 going away (server shutting down: reconnect elsewhere),
#: 1013 try again later (this socket fell too far behind: reconnect and resume),
#: 4401 not signed in (or signed out meanwhile), 4403 the session belongs
#: to another user (or the page's origin may not connect).
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403

#: What a client is told when Redis cannot be reached.
STORAGE_DOWN = (
    "storage is unavailable; your last request may not have gone through: "
    "send it again (with the same client_id it is acted on once)"
)


def error_frame(
    code: ErrorCode,
    message: str,
    *,
    client_id: str | None = None,
    conversation_id: str | None = None,
    retry_after: int | None = None,
) -> str:
    event = ErrorEvent(
        code=code,
        message=message,
        client_id=client_id,
        conversation_id=conversation_id,
        retry_after=retry_after,
    )
    return event.model_dump_json(exclude_none=True)


class FrameError(Exception):
    def __init__(self, message: str, raw: Any = None) -> None:
        super().__init__(message)
        self.message = message
        client_id = raw.get("client_id") if isinstance(raw, dict) else None
        # Echoed only if it is one: a refused frame may hold anything there.
        valid = isinstance(client_id, str) and len(client_id) <= 128
        self.client_id = client_id if valid else None


def parse_frame(text: str) -> Any:
    if too_deep(text, MAX_FRAME_DEPTH):
        raise FrameError(f"the frame nests deeper than {MAX_FRAME_DEPTH} levels")
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FrameError("the frame is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise FrameError("a frame must be a JSON object with a `type`")
    try:
        return client_frame_adapter.validate_python(raw)
    except ValidationError as exc:
        errors = exc.errors()
        kinds = {e["type"] for e in errors}
        if "union_tag_not_found" in kinds:
            raise FrameError("the frame has no `type`", raw) from exc
        if "union_tag_invalid" in kinds:
            # Never the client's text: a refused frame's `type` may be a megabyte.
            raise FrameError(f"unknown frame type; one of {FRAME_TYPES}", raw) from exc
        details = [dict(e, loc=e["loc"][1:]) for e in errors]
        raise FrameError(describe_validation(details), raw) from exc


class Connection:
    def __init__(
        self,
        ws: WebSocket,
        services: Services,
        user: UserInfo,
        session_id: str,
        problem: str | None = None,
        watch: Watch | None = None,
    ) -> None:
        self.ws = ws
        self.services = services
        self.user = user
        self.session_id = session_id
        #: What was wrong with the connection's parameters: told after hello.
        self.problem = problem
        #: Set when this socket's sign-in is revoked: it closes, and no frame
        #: that arrives meanwhile is acted on.
        self.watch = watch
        self.sub: Subscriber | None = None

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
        await self.ws.send_text(hello.model_dump_json(exclude={"event_id"}))
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
        if after is not None:
            services.resumes += 1
        try:
            self.sub = await services.hub.subscribe(self.session_id, after)
        except RedisError as exc:
            # No session stream, no delivery: the client reconnects and
            # resumes once Redis is back (the frame was not acted on).
            log.warning("cannot follow a session: %s", exc)
            client_id = getattr(frame, "client_id", None)
            await self.ws.send_text(error_frame("internal", STORAGE_DOWN, client_id=client_id))
            await self.ws.close(CLOSE_TRY_AGAIN, "storage unavailable; reconnect and resume")
            return
        sender = asyncio.create_task(self._send_loop(self.sub), name="ws-sender")
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
                self.services.resumes += 1
                assert self.sub is not None
                await self.services.hub.reposition(self.sub, frame.after)
            elif isinstance(frame, PingFrame):
                self._offer(PongEvent().model_dump_json(exclude={"event_id"}))
        except ApiError as exc:
            self._offer(
                error_frame(
                    exc.code,  # type: ignore[arg-type]
                    exc.message,
                    client_id=client_id,
                    conversation_id=getattr(frame, "conversation_id", None),
                    retry_after=exc.retry_after,
                )
            )
        except RedisError as exc:
            if is_storage_full(exc):  # maxmemory reached: writes are refused
                log.warning("storage full: a %s frame was refused", frame.type)
                self._offer(error_frame("storage_full", STORAGE_FULL, client_id=client_id))
                return
            log.exception("storage failed while handling a %s frame", frame.type)
            self._offer(error_frame("internal", STORAGE_DOWN, client_id=client_id))

    async def _send_loop(self, sub: Subscriber) -> None:
        # A client that stops reading is cut off by the server's WebSocket
        # protocol after TIDECHAT_SOCKET_WRITE_TIMEOUT_SECONDS (gateway/serve.py).
        while True:
            item = await sub.next()
            if item is None:
                # Left direct frames unread past the budget: reconnect and resume.
                await self.ws.close(CLOSE_TRY_AGAIN, "too far behind; reconnect and resume")
                return
            await self.ws.send_text(item.frame if isinstance(item, Delivery) else item)


@router.websocket("/ws")
async def websocket(ws: WebSocket, session: str | None = None) -> None:
    services: Services = ws.app.state.services
    token = token_from(ws.headers.get("authorization"), ws.cookies.get(COOKIE_NAME))
    offered, subprotocol = session_from_subprotocols(ws.scope.get("subprotocols") or [])
    session = session or offered
    # Registered before the token is checked: a log-out in between is not missed.
    watch = services.revocations.watch(token_hash(token)) if token else None
    try:
        await _admit(ws, services, token, session, subprotocol, watch)
    finally:
        if watch is not None:
            services.revocations.unwatch(watch)


async def _admit(
    ws: WebSocket,
    services: Services,
    token: str | None,
    session: str | None,
    subprotocol: str | None,
    watch: Watch | None,
) -> None:
    try:
        user = await services.auth.user_for_token(token, ws.headers.get("user-agent"))
    except RedisError:
        # Not "unauthorized": the client must retry, not sign in again.
        await ws.accept(subprotocol)
        await ws.send_text(error_frame("internal", STORAGE_DOWN))
        await ws.close(CLOSE_TRY_AGAIN, "storage unavailable; reconnect shortly")
        return
    await ws.accept(subprotocol)
    if user is None:
        await ws.send_text(error_frame("unauthorized", "sign in first"))
        await ws.close(CLOSE_UNAUTHORIZED, "sign in first")
        return
    if user.must_change_password:  # a one-time password an admin set
        await ws.send_text(error_frame("forbidden", "choose your own password first"))
        await ws.close(CLOSE_FORBIDDEN, "choose your own password first")
        return
    problem = None
    if session is not None and not SESSION_RE.fullmatch(session):
        # Served on a session of the server's choosing (hello names it).
        problem = "session must be 8-64 of A-Z a-z 0-9 _ -; this socket got a new session"
        session = None
    session_id = session or new_id()
    try:
        owned = await services.owners.claim(session_id, user.id)
    except RedisError:
        await ws.send_text(error_frame("internal", STORAGE_DOWN))
        await ws.close(CLOSE_TRY_AGAIN, "storage unavailable; reconnect shortly")
        return
    if not owned:
        # Someone else's session: not one event of it, whatever comes next.
        await ws.send_text(error_frame("forbidden", "this session belongs to another user"))
        await ws.close(CLOSE_FORBIDDEN, "not your session")
        return
    services.sockets.add(ws)
    try:
        await Connection(ws, services, user, session_id, problem, watch).serve()
    except WebSocketDisconnect:
        pass
    finally:
        services.sockets.discard(ws)


async def close_all(services: Services) -> None:
    """On shutdown: tell every client to go elsewhere (it reconnects and resumes)."""
    for ws in list(services.sockets):
        if ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await ws.close(CLOSE_GOING_AWAY, "server shutting down")
