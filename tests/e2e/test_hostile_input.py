"""Inputs that used to kill a socket or echo an attacker's bytes back: each is
answered with a short error, the socket keeps serving, and the gateway logs
no traceback (issue 18, finding 6; refused frames never echoed, finding 2)."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.e2e.conftest import unique
from tests.support.stack import Stack
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e


def gateway_log(stack: Stack) -> str:
    return stack.gateways[0].log.read_text(errors="replace")


async def still_serves(sock: ChatSocket) -> None:
    """A whole turn completes on this socket."""
    start = len(sock.frames)
    await sock.send({"type": "message", "content": "still there?"})
    end = await sock.wait_for(lambda f: f["type"] == "stream_end", start=start)
    assert end["message"]["finish_reason"] == "stop"


async def test_a_session_id_ending_in_a_newline_is_refused_and_the_socket_serves(
    stack: Stack,
) -> None:
    token = stack.signup(unique("nl"))
    conn = await websockets.connect(
        stack.ws_url + "?session=abcdefgh%0A",
        additional_headers={"Authorization": f"Bearer {token}"},
    )
    sock = ChatSocket(conn)
    hello = await sock.wait_type("hello")
    assert hello["session"] != "abcdefgh\n"
    err = await sock.wait_type("error")
    assert err["code"] == "bad_request" and "session" in err["message"]
    await still_serves(sock)
    await sock.close()
    assert "Traceback" not in gateway_log(stack)


async def test_a_frame_nested_100000_deep_gets_an_error_and_the_socket_serves(
    stack: Stack,
) -> None:
    token = stack.signup(unique("deep"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.wait_type("hello")
    for deep in ("[" * 100_000 + "]" * 100_000, '{"type":"ping","x":' + "[" * 100_000):
        start = len(sock.frames)
        await sock.send(deep)
        err = await sock.wait_for(lambda f: f["type"] == "error", start=start)
        assert err["code"] == "bad_request"
    # Ordinary nesting still parses.
    start = len(sock.frames)
    await sock.send({"type": "ping", "extra": [[[{"a": [1, "]]]]"]}]]]})
    await sock.wait_for(lambda f: f["type"] == "pong", start=start)
    await still_serves(sock)
    await sock.close()
    assert "Traceback" not in gateway_log(stack)


async def test_a_refused_frame_is_never_echoed_back(stack: Stack) -> None:
    token = stack.signup(unique("echo"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.wait_type("hello")
    marker = "ATTACKER-BYTES-"
    refused = [
        {"type": marker * 70_000},  # ~1 MB unknown type
        {"type": "message", "content": "hi", "model": marker * 70_000},
        {"type": "message", "content": "hi", "client_id": marker * 1_000},
    ]
    for frame in refused:
        start = len(sock.frames)
        await sock.send(json.dumps(frame))
        err = await sock.wait_for(lambda f: f["type"] == "error", start=start)
        assert len(json.dumps(err)) < 400
        assert (marker * 4) not in json.dumps(err)
    await still_serves(sock)
    await sock.close()
