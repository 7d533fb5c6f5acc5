"""``POST /api/chat``: one turn, streamed back as Server-Sent Events, so a
script (or ``curl -N``) can chat without a WebSocket; and
``POST /api/turns/{turn_id}/approvals/{call_id}``: the answer to a tool
call's ``approval_required`` (the WebSocket's ``approve`` frame, over HTTP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import CurrentUser, ServicesDep, request_token
from gateway.errors import ApiError
from gateway.security.signins import token_hash
from gateway.tool_approvals import approve
from shared.conversation import Id, new_id
from shared.protocol import TERMINAL_EVENT_TYPES, ApproveFrame, CallId, MessageFrame

router = APIRouter()

#: A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_S = 15.0


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str
    conversation_id: Id | None = None
    model: str | None = None
    parent_id: Id | None = None
    #: Ids of the caller's uploaded files to attach (``POST /api/files``).
    attachments: list[Id] = Field(default_factory=list, max_length=100)


def sse(event: str, data: str, event_id: str | None = None) -> str:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id else "")
    return head + f"data: {data}\n\n"


@router.post(
    "/chat",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the turn's events"}},
)
async def chat(
    body: ChatRequest, request: Request, user: CurrentUser, services: ServicesDep
) -> StreamingResponse:
    """The same turn as a WebSocket ``message``; closes after ``stream_end`` or ``error``
    (also when the sign-in is revoked meanwhile: an ``error`` ``unauthorized``)."""
    session_id = new_id()
    token = request_token(request) or ""
    # Watched first, then checked again: a log-out racing this request is
    # either seen here or published to the watch.
    watch = services.revocations.watch(token_hash(token))
    if not await services.auth.signed_in(token):
        services.revocations.unwatch(watch)
        raise ApiError("unauthorized", "sign in first")
    # A fresh session, recorded as the caller's: every event on it is this
    # request's, from the start.
    try:
        await services.owners.claim(session_id, user.id)
        sub = await services.hub.subscribe(session_id, "0-0")
    except BaseException:
        services.revocations.unwatch(watch)
        raise
    watch.on_revoke.append(
        lambda: sub.say(
            json.dumps({"type": "error", "code": "unauthorized", "message": watch.reason})
        )
    )
    try:
        turn_id = await services.turns.message(
            user, session_id, MessageFrame(type="message", **body.model_dump())
        )
    except BaseException:
        services.hub.unsubscribe(sub)
        services.revocations.unwatch(watch)
        raise

    async def events() -> AsyncIterator[str]:
        try:
            while True:
                try:
                    await asyncio.wait_for(sub.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                item = await sub.next()
                if isinstance(item, str):  # the sign-in was revoked
                    yield sse("error", item)
                    return
                if item is None:
                    error = {"type": "error", "code": "internal", "message": "stream fell behind"}
                    yield sse("error", json.dumps(error))
                    return
                yield sse(item.type, item.frame, item.event_id)
                if (
                    item.type in TERMINAL_EVENT_TYPES
                    and json.loads(item.frame).get("turn_id") == turn_id
                ):
                    return
        finally:
            services.hub.unsubscribe(sub)
            services.revocations.unwatch(watch)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class ApprovalAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Run the call (true) or refuse it (false).
    approve: bool


@router.post("/turns/{turn_id}/approvals/{call_id}", status_code=204)
async def answer_approval(
    turn_id: Id,
    call_id: Annotated[CallId, Path()],
    body: ApprovalAnswer,
    user: CurrentUser,
    services: ServicesDep,
) -> Response:
    """Answer a tool call waiting for the caller's approval (an
    ``approval_required`` event, e.g. on ``POST /api/chat``'s stream): the
    same as the WebSocket's ``approve`` frame. The first answer counts;
    404 when no such call of the caller's waits (unknown, answered,
    finished, or another user's turn: the same answer)."""
    frame = ApproveFrame(type="approve", turn_id=turn_id, call_id=call_id, approve=body.approve)
    await approve(services.redis, services.settings.keys, user, frame)
    return Response(status_code=204)
