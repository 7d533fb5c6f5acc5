"""Client frames on the WebSocket: parsing (bounded before it recurses),
the errors a refused frame gets, and the protocol's close codes. Kept apart
from the connection loop (``routes/ws.py``) so both can be read, and
tested, on their own."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from gateway.errors import describe_validation
from gateway.jsonguard import too_deep
from shared.protocol import (
    CLIENT_FRAME_TYPES,
    ClientFrame,
    ErrorCode,
    ErrorEvent,
    client_frame_adapter,
)

#: Used with ``fullmatch``: ``$`` in ``match`` also matches before a final newline.
SESSION_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
#: Client frames are flat JSON objects; anything nested deeper is refused
#: before it is parsed (the parser recurses).
MAX_FRAME_DEPTH = 16
FRAME_TYPES = ", ".join(CLIENT_FRAME_TYPES)

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
    current_id: str | None = None,
) -> str:
    event = ErrorEvent(
        code=code,
        message=message,
        client_id=client_id,
        conversation_id=conversation_id,
        retry_after=retry_after,
        current_id=current_id,
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


def parse_frame(text: str) -> ClientFrame:
    """The frame ``text`` holds; FrameError (with a short message that never
    quotes the client's text) when it is not one."""
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
