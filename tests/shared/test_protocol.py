"""The protocol models: what a client may send, what it receives."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.conversation import Message
from shared.protocol import (
    MessageFrame,
    ResumeFrame,
    StreamChunkEvent,
    StreamEndEvent,
    client_frame_adapter,
    parse_event,
)
from shared.streams import TurnRequest, decode_turn, encode_event, encode_turn, frame_with_event_id


def test_client_frames_are_one_union_tagged_by_type() -> None:
    frame = client_frame_adapter.validate_python({"type": "message", "content": "hi"})
    assert isinstance(frame, MessageFrame)
    assert frame.conversation_id is None
    resume = client_frame_adapter.validate_json('{"type": "resume", "after": "12-0"}')
    assert isinstance(resume, ResumeFrame)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "nope"},
        {"content": "no type"},
        {"type": "message"},
        {"type": "message", "content": 5},
        {"type": "stop"},
        {"type": "resume", "after": "not-an-id"},
        {"type": "regenerate", "conversation_id": "../etc", "message_id": "x"},
        {"type": "message", "content": "hi", "conversation_id": "a" * 65},
    ],
)
def test_bad_frames_are_rejected(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        client_frame_adapter.validate_python(raw)


def test_stored_event_gets_its_event_id_spliced_in() -> None:
    event = StreamChunkEvent(turn_id="t1", chunk='he said "hi"\n')
    fields = encode_event(event)
    assert fields["t"] == "stream_chunk"
    frame = frame_with_event_id("171-3", fields["d"])
    decoded = json.loads(frame)
    assert decoded == {
        "event_id": "171-3",
        "type": "stream_chunk",
        "turn_id": "t1",
        "chunk": 'he said "hi"\n',
    }
    assert isinstance(parse_event(frame), StreamChunkEvent)


def test_stream_end_carries_the_whole_message() -> None:
    msg = Message(id="a1", parent_id="u1", role="assistant", content="done", finish_reason="stop")
    frame = frame_with_event_id(
        "1-0", encode_event(StreamEndEvent(turn_id="a1", conversation_id="c", message=msg))["d"]
    )
    parsed = parse_event(frame)
    assert isinstance(parsed, StreamEndEvent)
    assert parsed.message.content == "done"
    assert parsed.event_id == "1-0"


def test_turn_entries_round_trip() -> None:
    turn = TurnRequest(
        turn_id="t", session_id="s" * 8, user_id="u", conversation_id="c", parent_id="p", model="m"
    )
    assert decode_turn(encode_turn(turn)) == turn
