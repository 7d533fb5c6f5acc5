"""Inputs that used to kill a socket or echo an attacker's bytes back: each is
answered with a short error, the socket keeps serving, and the gateway logs
no traceback (issue 18, finding 6; refused frames never echoed, finding 2)."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from shared.conversation import new_id
from shared.redis_client import make_redis
from tests.e2e.conftest import unique
from tests.support.resuming import KEYS
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
        {"type": marker * 60_000},  # ~900 KB unknown type (under the 1 MiB frame limit)
        {"type": "message", "content": "hi", "model": marker * 60_000},
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


async def test_a_stop_flood_is_refused_and_each_turn_is_announced_once(
    stack: Stack, redis_url: str
) -> None:
    """Every stop announcement reaches every worker: 3,000 stop frames from
    one socket must not become 3,000 announcements (issue 18, finding 4)."""
    heard: list[str] = []
    listener = make_redis(redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(KEYS.cancel_channel())

    async def listen() -> None:
        async for message in pubsub.listen():
            heard.append(str(message["data"]))

    listening = asyncio.create_task(listen())
    token = stack.signup(unique("stopper"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    try:
        await sock.wait_type("hello")
        # The same turn stopped 50 times: announced once.
        same = new_id()
        for _ in range(50):
            await sock.send({"type": "stop", "turn_id": same})
        # Then 3,000 distinct ones, as fast as the socket takes them.
        for _ in range(3_000):
            await sock.send({"type": "stop", "turn_id": new_id()})
        await sock.send({"type": "ping"})
        await sock.wait_type("pong", timeout=60)
        refused = [f for f in sock.frames if f.get("code") == "rate_limited"]
        assert len(refused) >= 3_050 - 60
        assert refused[0]["message"].startswith("too many stops")
        # Every stop was handled before the pong: a marker published now is
        # heard after every announcement the flood made.
        await listener.publish(KEYS.cancel_channel(), "end-of-flood")
        async with asyncio.timeout(10):
            while "end-of-flood" not in heard:
                await asyncio.sleep(0.05)
        mine = [h for h in heard if h.endswith(" " + sock.frames[0]["user"]["id"])]
        assert sum(h.startswith(same + " ") for h in mine) == 1
        assert len(mine) <= 60
        await still_serves(sock)
    finally:
        await sock.close()
        listening.cancel()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await listener.aclose()
