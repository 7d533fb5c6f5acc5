"""Live sync across tabs and gateways (issue 16 finding 1) and no silent
forks (finding 2), over real sockets: two gateways on one Redis, a user's
two tabs on different gateways, each with its own session."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import MODELS
from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e

# Plain httpx calls between socket waits keep these tests short to read.
# ruff: noqa: ASYNC212


@pytest.fixture(scope="module")
def two_gateways(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        redis_url, tmp_path_factory.mktemp("live"), models=MODELS, workers=1, gateways=2
    ) as stack:
        yield stack


def ws_url(stack: Stack, index: int) -> str:
    return stack.gateway_url(index).replace("http://", "ws://") + "/ws"


async def tab(stack: Stack, token: str, gateway: int) -> ChatSocket:
    sock = await ChatSocket.connect(ws_url(stack, gateway), token)
    await sock.wait_type("hello")
    await sock.send({"type": "ping"})  # delivery starts at the live end
    await sock.wait_type("pong")
    return sock


def user(stack: Stack) -> str:
    return stack.signup(f"live{uuid.uuid4().hex[:10]}")


async def test_a_turn_in_one_tab_streams_live_in_the_other(two_gateways: Stack) -> None:
    token = user(two_gateways)
    a = await tab(two_gateways, token, 0)
    b = await tab(two_gateways, token, 1)
    await a.send({"type": "message", "content": "first", "model": "scripted"})
    created = await b.wait_type("conversation_created")  # from the feed
    cid = created["conversation"]["id"]
    assert created["feed_id"] and "event_id" not in created
    await a.wait_type("stream_end")
    await b.send({"type": "watch", "conversation_id": cid})
    await b.send({"type": "ping"})
    await b.wait_for(lambda f: f["type"] == "pong", start=len(b.frames))

    start = len(a.frames)
    await a.send({"type": "message", "content": "second", "conversation_id": cid, "model": "slow"})
    turn = (await a.wait_for(lambda f: f["type"] == "user_message", start=start))["turn_id"]
    sent_at = time.monotonic()
    question = await b.wait_type("user_message", turn_id=turn)
    assert question["message"]["content"] == "second"
    await b.wait_type("stream_chunk", turn_id=turn)
    print(f"tab B saw the question {1000 * (time.monotonic() - sent_at):.0f} ms after A's echo")
    end_b = await b.wait_type("stream_end", timeout=30, turn_id=turn)
    end_a = await a.wait_type("stream_end", timeout=30, turn_id=turn)
    assert end_b["message"] == end_a["message"]
    # Chunk by chunk, B saw exactly what A saw (written once, read by both).
    assert b.streamed_text_of(turn) == a.streamed_text_of(turn)
    assert b.text_of(turn) == end_a["message"]["content"]
    # The sidebar: B heard the turn start, and the title the worker gave.
    started = await b.wait_type("turn_started", turn_id=turn)
    assert started["conversation_id"] == cid
    await a.close()
    await b.close()


async def test_a_tab_that_opens_a_conversation_mid_reply_gets_the_whole_reply(
    two_gateways: Stack,
) -> None:
    token = user(two_gateways)
    a = await tab(two_gateways, token, 0)
    b = await tab(two_gateways, token, 1)  # connected, showing no conversation
    await a.send({"type": "message", "content": "a long one", "model": "slow"})
    turn = (await a.wait_type("user_message"))["turn_id"]
    cid = (await a.wait_type("stream_start"))["conversation_id"]
    await a.wait_for(lambda f: f["type"] == "stream_chunk" and len(a.streamed_text_of(turn)) > 40)
    await b.send({"type": "watch", "conversation_id": None})
    await b.send({"type": "watch", "conversation_id": cid})
    end = await b.wait_type("stream_end", timeout=30, turn_id=turn)
    # From its first chunk, not from where B came in.
    assert b.streamed_text_of(turn) == a.streamed_text_of(turn)
    assert len(b.streamed_text_of(turn)) > 40
    assert b.text_of(turn) == end["message"]["content"]
    # A finished turn is not replayed to a tab that opens the conversation later.
    c = await tab(two_gateways, token, 0)
    await c.send({"type": "watch", "conversation_id": cid})
    await c.send({"type": "ping"})
    await c.wait_for(lambda f: f["type"] == "pong", start=2)
    assert not [f for f in c.frames if f.get("turn_id") == turn]
    for s in (a, b, c):
        await s.close()


async def test_sidebar_changes_reach_every_tab(two_gateways: Stack) -> None:
    token = user(two_gateways)
    b = await tab(two_gateways, token, 1)
    with httpx.Client(
        base_url=two_gateways.gateway_url(0), headers={"Authorization": f"Bearer {token}"}
    ) as http:
        cid = http.post("/api/conversations", json={}).json()["id"]
        created = await b.wait_type("conversation_created")
        assert created["conversation"]["id"] == cid
        http.patch(f"/api/conversations/{cid}", json={"title": "Renamed"}).raise_for_status()
        renamed = await b.wait_type("title", conversation_id=cid)
        assert renamed["title"] == "Renamed"
        http.delete(f"/api/conversations/{cid}").raise_for_status()
        await b.wait_type("conversation_deleted", conversation_id=cid)
    await b.close()


async def test_another_users_tab_hears_nothing(two_gateways: Stack) -> None:
    alice, bob = user(two_gateways), user(two_gateways)
    a = await tab(two_gateways, alice, 0)
    spy = await tab(two_gateways, bob, 1)
    await a.send({"type": "message", "content": "private", "model": "scripted"})
    cid = (await a.wait_type("stream_start"))["conversation_id"]
    await spy.send({"type": "watch", "conversation_id": cid})
    await a.send({"type": "message", "content": "more", "conversation_id": cid})
    await a.wait_for(lambda f: f["type"] == "stream_end" and f["message"]["content"], start=8)
    await spy.send({"type": "ping"})
    await spy.wait_for(lambda f: f["type"] == "pong", start=2)
    assert {f["type"] for f in spy.frames} == {"hello", "pong"}
    await a.close()
    await spy.close()


async def test_a_send_from_a_stale_tab_is_a_conflict_not_a_fork(two_gateways: Stack) -> None:
    token = user(two_gateways)
    a = await tab(two_gateways, token, 0)
    await a.send({"type": "message", "content": "one", "model": "scripted"})
    first = await a.wait_type("stream_end")
    cid, seen = first["conversation_id"], first["message"]["id"]
    await a.send({"type": "message", "content": "two", "conversation_id": cid, "parent_id": seen})
    second = await a.wait_for(lambda f: f["type"] == "stream_end" and f["message"]["id"] != seen)
    # Tab B still thinks the reply to "one" is the newest message.
    b = await tab(two_gateways, token, 1)
    frame = {"type": "message", "content": "three", "conversation_id": cid, "parent_id": seen}
    await b.send({**frame, "client_id": "stale-1"})
    refused = await b.wait_type("error", client_id="stale-1")
    assert refused["code"] == "conflict"
    assert refused["current_id"] == second["message"]["id"]
    with httpx.Client(
        base_url=two_gateways.gateway_url(1), headers={"Authorization": f"Bearer {token}"}
    ) as http:
        conv = http.get(f"/api/conversations/{cid}").json()
    assert "three" not in {m["content"] for m in conv["messages"].values()}
    assert conv["messages"][seen]["children"] == [second["message"]["parent_id"]]
    # Sent onto the new tail, it goes through.
    await b.send({**frame, "parent_id": second["message"]["id"], "client_id": "stale-2"})
    echo = await b.wait_type("user_message", client_id="stale-2")
    assert echo["message"]["parent_id"] == second["message"]["id"]
    await a.close()
    await b.close()
