"""The WebSocket endpoint ``/ws``: who may connect (a signed-in user whose
own password is set, on a session of theirs), then the socket is served by
``gateway/connection.py``'s ``Connection`` and counted in the socket
registry (``gateway/sockets.py``)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from gateway.auth import COOKIE_NAME, token_from
from gateway.connection import Connection
from gateway.deps import Services
from gateway.frames import (
    CLOSE_FORBIDDEN,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    SESSION_RE,
    STORAGE_DOWN,
    error_frame,
)
from gateway.security.revocation import Watch
from gateway.security.sessions import session_from_subprotocols
from gateway.security.signins import token_hash
from shared.conversation import new_id

log = logging.getLogger(__name__)
router = APIRouter()


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
