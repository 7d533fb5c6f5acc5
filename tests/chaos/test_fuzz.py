"""Property-based fuzzing of WebSocket frames against a live stack: any
JSON, and frames of the right shape with wrong values, never break the
socket (a ping after each gets its pong) nor store anything when refused."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from tests.chaos.live import FUZZ, Target

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TYPES = ["message", "regenerate", "edit", "stop", "resume", "ping", "hello", "", "MESSAGE"]


def frames(t: Target) -> st.SearchStrategy[str | bytes]:
    ids = st.one_of(
        st.sampled_from([t.cid, t.user_message_id, t.reply_id, t.foreign_cid]),
        st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        st.text(max_size=70),
        JSON,
    )
    contents = st.one_of(st.text(max_size=200), st.sampled_from(["", "   ", "x" * 32_001]), JSON)
    shaped = st.fixed_dictionaries(
        {"type": st.sampled_from(TYPES)},
        optional={
            "content": contents,
            "conversation_id": ids,
            "message_id": ids,
            "parent_id": ids,
            "turn_id": ids,
            "model": st.one_of(st.sampled_from(["scripted", "gpt-17"]), JSON),
            "after": st.one_of(st.from_regex(r"\d{1,20}-\d{1,20}", fullmatch=True), JSON),
            "client_id": st.one_of(st.text(max_size=200), JSON),
        },
    )
    # Well-formed frames whose values are wrong: another user's conversation,
    # ids that exist nowhere or name the wrong kind of message, sizes and
    # models past the limits.
    real_ids = st.sampled_from([t.cid, t.user_message_id, t.reply_id, t.foreign_cid, "nope"])
    texts = st.one_of(st.text(min_size=1, max_size=50), st.sampled_from(["   ", "x" * 32_001]))
    models = st.sampled_from([None, "scripted", "gpt-17", ""])
    typed = st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("message"), "content": texts},
            optional={"conversation_id": real_ids, "parent_id": real_ids, "model": models},
        ),
        st.fixed_dictionaries(
            {"type": st.just("regenerate"), "conversation_id": real_ids, "message_id": real_ids},
            optional={"model": models},
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("edit"),
                "conversation_id": real_ids,
                "message_id": real_ids,
                "content": texts,
            }
        ),
        st.fixed_dictionaries({"type": st.just("stop"), "turn_id": real_ids}),
    )
    return st.one_of(
        shaped.map(json.dumps),
        typed.map(json.dumps),
        JSON.map(json.dumps),
        st.text(max_size=100),
        st.binary(max_size=40),
    )


def is_ping(raw: str | bytes) -> bool:
    try:
        frame = json.loads(raw)
    except ValueError:
        return False
    return isinstance(frame, dict) and frame.get("type") == "ping"


@pytest.fixture(scope="module")
def tally() -> Iterator[Counter[str]]:
    seen: Counter[str] = Counter()
    yield seen
    refused = {k: v for k, v in sorted(seen.items()) if k not in ("frames", "accepted")}
    print(
        f"\nwebsocket fuzz: {seen['frames']} frames, each answered and followed by a pong; "
        f"{seen['accepted']} accepted, refused with {refused}, none stored"
    )


@FUZZ
@given(data=st.data())
def test_no_websocket_frame_breaks_the_socket_or_stores_when_refused(
    target: Target, tally: Counter[str], data: st.DataObject
) -> None:
    raw = data.draw(frames(target))
    target.drain()
    before = target.snapshot()
    target.ws.send(raw)
    target.ws.send(json.dumps({"type": "ping"}))
    # Frames are handled in order: an error about this one comes before the pong.
    got = target.recv_until("pong")
    if is_ping(raw):  # it was a ping itself: our ping's pong comes second
        got += target.recv_until("pong")
    refusals = [f for f in got if f["type"] == "error" and "event_id" not in f]
    assert all(f["code"] != "internal" for f in refusals), refusals
    tally["frames"] += 1
    for refusal in refusals:
        tally[refusal["code"]] += 1
    if refusals:
        assert target.snapshot() == before, f"stored after refusing {raw!r}"
    else:
        tally["accepted"] += 1


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_no_first_frame_of_a_new_socket_deafens_the_others(
    target: Target, data: st.DataObject
) -> None:
    """The first frame of a socket says where its delivery starts (a
    ``resume``), so it reaches the gateway's one reader: whatever it is, the
    other sockets keep getting their events."""
    # ids up to what the frame's pattern allows (20 digits), often near 2**64
    parts = st.one_of(st.integers(0, 10**20 - 1), st.integers(2**64 - 2, 2**64 + 2))
    ids = st.builds(lambda ms, seq: f"{ms}-{seq}", parts, parts)
    raw = data.draw(
        st.one_of(
            st.builds(lambda after: json.dumps({"type": "resume", "after": after}), ids),
            frames(target),
        )
    )
    first_frame_then_ping(target, raw)
    target.still_served()


def first_frame_then_ping(target: Target, raw: str | bytes) -> list[dict[str, object]]:
    """A new socket's first frame, then a ping; the frames up to the pong."""
    headers = {"Authorization": f"Bearer {target.token}"}
    with connect(target.stack.ws_url, additional_headers=headers) as fresh:
        assert json.loads(fresh.recv(timeout=15))["type"] == "hello"
        fresh.send(raw)
        fresh.send(json.dumps({"type": "ping"}))
        got = []
        while not got or got[-1]["type"] != "pong":
            got.append(json.loads(fresh.recv(timeout=15)))
    target.drain()
    return got


@pytest.mark.parametrize("after", ["18446744073709551616-0", "0-99999999999999999999"])
def test_a_resume_past_the_largest_event_id_is_refused(target: Target, after: str) -> None:
    # Redis refuses such an id: had it reached the reader's XREAD, every
    # socket of the gateway would have gone deaf.
    got = first_frame_then_ping(target, json.dumps({"type": "resume", "after": after}))
    assert [f["code"] for f in got if f["type"] == "error"] == ["bad_request"]
    target.still_served()
