"""The WebSocket frame parser on its own: what it accepts, and what a refused
frame is told (never the client's own text back)."""

from __future__ import annotations

import json

import pytest

from gateway.frames import MAX_FRAME_DEPTH, FrameError, error_frame, parse_frame
from shared.protocol import CLIENT_FRAME_TYPES, MessageFrame, StopFrame


def test_a_message_frame_parses_to_its_model() -> None:
    frame = parse_frame(json.dumps({"type": "message", "content": "hi", "client_id": "c1"}))
    assert isinstance(frame, MessageFrame)
    assert (frame.content, frame.client_id) == ("hi", "c1")
    assert isinstance(parse_frame('{"type":"stop","turn_id":"abc123"}'), StopFrame)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"content": "hi"}', "no `type`"),
        ("[" * (MAX_FRAME_DEPTH + 1) + "]" * (MAX_FRAME_DEPTH + 1), "nests deeper"),
    ],
)
def test_what_is_not_a_frame_is_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(text)
    assert says in caught.value.message


def test_an_unknown_type_lists_the_protocols_types_and_never_echoes_the_client() -> None:
    huge = "x" * 100_000
    with pytest.raises(FrameError) as caught:
        parse_frame(json.dumps({"type": huge, "client_id": "c9"}))
    message = caught.value.message
    assert huge[:20] not in message
    assert all(t in message for t in CLIENT_FRAME_TYPES)
    assert caught.value.client_id == "c9"  # so the client can match the error


def test_a_bad_field_is_named_and_a_bad_client_id_is_not_echoed() -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(json.dumps({"type": "stop", "client_id": "y" * 500}))
    assert "turn_id" in caught.value.message
    assert caught.value.client_id is None


def test_error_frames_leave_out_what_is_unset() -> None:
    assert json.loads(error_frame("bad_request", "no")) == {
        "type": "error",
        "code": "bad_request",
        "message": "no",
    }
    body = json.loads(error_frame("rate_limited", "slow down", client_id="c", retry_after=3))
    assert (body["client_id"], body["retry_after"]) == ("c", 3)
