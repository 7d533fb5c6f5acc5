"""Chatting over the WebSocket, end to end: gateway (uvicorn) + 2 workers."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.e2e.conftest import unique
from tests.support.stack import Stack
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e


async def turn(sock: ChatSocket, frame: dict[str, object]) -> tuple[str, dict[str, object]]:
    """Send a frame that starts a turn; wait for its stream_end; return (turn_id, end)."""
    start = len(sock.frames)
    await sock.send(frame)
    started = await sock.wait_for(lambda f: f["type"] == "stream_start", start=start)
    turn_id = str(started["turn_id"])
    end = await sock.wait_for(
        lambda f: f["type"] == "stream_end" and f["turn_id"] == turn_id, start=start
    )
    return turn_id, end


async def test_two_users_chat_at_once(stack: Stack) -> None:
    tokens = [stack.signup(unique("u")) for _ in range(2)]
    socks = [await ChatSocket.connect(stack.ws_url, t) for t in tokens]
    hellos = await asyncio.gather(*(s.wait_type("hello") for s in socks))
    assert hellos[0]["user"]["id"] != hellos[1]["user"]["id"]
    questions = ["What is a tide?", "Why is the sea salty?"]
    results = await asyncio.gather(
        *(
            turn(
                s, {"type": "message", "content": q, "conversation_id": None, "client_id": f"c{i}"}
            )
            for i, (s, q) in enumerate(zip(socks, questions, strict=True))
        )
    )
    for sock, q, (turn_id, end) in zip(socks, questions, results, strict=True):
        created = await sock.wait_type("conversation_created")
        user_msg = await sock.wait_type("user_message")
        assert user_msg["message"]["content"] == q
        assert user_msg["client_id"] in ("c0", "c1")
        assert end["message"]["content"].startswith(f"You said: {q}")
        assert sock.text_of(turn_id) == end["message"]["content"]
        # every event id is increasing: in order, nothing twice
        ids = [tuple(map(int, i.split("-"))) for i in sock.event_ids()]
        assert ids == sorted(set(ids))
        cid = created["conversation"]["id"]
        other = socks[1 - socks.index(sock)]
        assert all(f.get("conversation_id") != cid for f in other.frames)
        title = await sock.wait_type("title", conversation_id=cid)
        assert title["title"] == q.rstrip("?") or title["title"] == q
    for s in socks:
        await s.close()


async def test_regenerate_edit_and_switch_branch(stack: Stack) -> None:
    token = stack.signup(unique("branch"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    first_id, first = await turn(sock, {"type": "message", "content": "first question"})
    cid = str(first["conversation_id"])
    user_id = str(first["message"]["parent_id"])

    second_id, second = await turn(
        sock, {"type": "regenerate", "conversation_id": cid, "message_id": first_id}
    )
    assert second["message"]["parent_id"] == user_id
    assert second_id != first_id

    edited_id, edited = await turn(
        sock,
        {
            "type": "edit",
            "conversation_id": cid,
            "message_id": user_id,
            "content": "a better question",
        },
    )
    assert edited["message"]["content"].startswith("You said: a better question")

    with stack.client(token) as http:
        # The whole tree (the export); a page holds the branch on screen.
        conv = http.get(f"/api/conversations/{cid}/export", params={"format": "json"}).json()
        roots = [m for m in conv["messages"].values() if m["parent_id"] is None]
        assert [r["content"] for r in roots] == ["first question", "a better question"]
        assert conv["messages"][user_id]["children"] == [first_id, second_id]
        assert conv["current_id"] == edited_id
        page = http.get(f"/api/conversations/{cid}").json()
        assert page["branch"] == [page["messages"][edited_id]["parent_id"], edited_id]
        assert page["head_siblings"] == [r["id"] for r in roots]
        # switch back to the first branch
        r = http.patch(f"/api/conversations/{cid}", json={"current_id": second_id})
        assert r.status_code == 200
        assert r.json()["current_id"] == second_id
        # a new message continues the branch on screen
    _, follow = await turn(
        sock, {"type": "message", "content": "and then?", "conversation_id": cid}
    )
    with stack.client(token) as http:
        conv = http.get(f"/api/conversations/{cid}").json()
        follow_user = conv["messages"][follow["message"]["parent_id"]]
        assert follow_user["parent_id"] == second_id
        md = http.get(f"/api/conversations/{cid}/export?format=markdown").text
        assert "first question" in md and "and then?" in md and "a better question" not in md
    await sock.close()


async def test_stop_ends_a_reply_and_keeps_the_partial_text(stack: Stack) -> None:
    token = stack.signup(unique("stop"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.send({"type": "message", "content": "a long answer please", "model": "slow"})
    user_msg = await sock.wait_type("user_message")
    turn_id = user_msg["turn_id"]
    await sock.wait_type("stream_chunk", turn_id=turn_id)
    await sock.wait_for(
        lambda f: f["type"] == "stream_chunk" and len(sock.streamed_text_of(turn_id).split()) >= 5
    )
    asked = time.monotonic()
    await sock.send({"type": "stop", "turn_id": turn_id})
    end = await sock.wait_type("stream_end", turn_id=turn_id)
    assert time.monotonic() - asked < 0.5
    assert end["message"]["finish_reason"] == "stopped"
    assert 5 <= len(end["message"]["content"].split()) < 200
    with stack.client(token) as http:
        conv = http.get(f"/api/conversations/{user_msg['conversation_id']}").json()
        assert conv["messages"][turn_id]["content"] == end["message"]["content"]
        assert conv["messages"][turn_id]["finish_reason"] == "stopped"
    await sock.close()


async def test_a_socket_closed_mid_reply_resumes_with_nothing_lost(stack: Stack) -> None:
    token = stack.signup(unique("resume"))
    session = unique("sess")
    sock = await ChatSocket.connect(stack.ws_url, token, session=session)
    await sock.send({"type": "message", "content": "tell me a long story", "model": "slow"})
    user_msg = await sock.wait_type("user_message")
    turn_id = user_msg["turn_id"]
    await sock.wait_for(
        lambda f: f["type"] == "stream_chunk" and len(sock.streamed_text_of(turn_id).split()) >= 10
    )
    await sock.close()
    last = sock.event_ids()[-1]
    before = sock.streamed_text_of(turn_id)

    again = await ChatSocket.connect(stack.ws_url, token, session=session)
    await again.wait_type("hello")
    await again.send({"type": "resume", "after": last})
    end = await again.wait_type("stream_end", turn_id=turn_id, timeout=20)
    # the old socket's text plus the resumed chunks is the stored reply, but
    # for the tail that only stream_end carries: nothing lost, nothing twice
    resumed = "".join(f["chunk"] for f in again.frames if f["type"] == "stream_chunk")
    stored = end["message"]["content"]
    assert stored.startswith(before + resumed)
    assert len(stored.split()) - len((before + resumed).split()) <= 2
    assert again.text_of(turn_id) == stored
    ids = again.event_ids()
    assert all(tuple(map(int, i.split("-"))) > tuple(map(int, last.split("-"))) for i in ids)
    assert len(ids) == len(set(ids))
    with stack.client(token) as http:
        conv = http.get(f"/api/conversations/{user_msg['conversation_id']}").json()
        assert conv["messages"][turn_id]["content"] == stored
    await again.close()


async def test_a_new_socket_without_resume_starts_at_the_live_end(stack: Stack) -> None:
    token = stack.signup(unique("live"))
    session = unique("sess")
    sock = await ChatSocket.connect(stack.ws_url, token, session=session)
    await turn(sock, {"type": "message", "content": "hello"})
    await sock.close()
    again = await ChatSocket.connect(stack.ws_url, token, session=session)
    await again.send({"type": "ping"})
    await again.wait_type("pong")
    assert not any(f["type"] in ("user_message", "stream_end") for f in again.frames)
    await again.close()


async def test_another_users_conversation_is_not_found_over_ws_and_http(stack: Stack) -> None:
    alice, mallory = stack.signup(unique("alice")), stack.signup(unique("mallory"))
    sock = await ChatSocket.connect(stack.ws_url, alice)
    turn_id, end = await turn(sock, {"type": "message", "content": "my secret plan"})
    cid = str(end["conversation_id"])
    user_id = str(end["message"]["parent_id"])
    await sock.close()

    evil = await ChatSocket.connect(stack.ws_url, mallory)
    attempts = [
        {"type": "message", "content": "hi", "conversation_id": cid},
        {"type": "regenerate", "conversation_id": cid, "message_id": turn_id},
        {"type": "edit", "conversation_id": cid, "message_id": user_id, "content": "x"},
    ]
    for frame in attempts:
        start = len(evil.frames)
        await evil.send(frame)
        err = await evil.wait_for(lambda f: f["type"] == "error", start=start)
        assert err["code"] == "not_found"
    with stack.client(mallory) as http:
        for method, path in [
            ("GET", f"/api/conversations/{cid}"),
            ("PATCH", f"/api/conversations/{cid}"),
            ("DELETE", f"/api/conversations/{cid}"),
            ("GET", f"/api/conversations/{cid}/export?format=json"),
        ]:
            r = http.request(method, path, json={"title": "pwned"} if method == "PATCH" else None)
            assert r.status_code == 404, (method, path)
            assert r.json()["error"]["code"] == "not_found"
        assert http.get("/api/conversations").json()["items"] == []
        assert http.get("/api/conversations?q=secret").json()["items"] == []
        r = http.post("/api/chat", json={"content": "hi", "conversation_id": cid})
        assert r.status_code == 404
    with stack.client(alice) as http:
        conv = http.get(f"/api/conversations/{cid}").json()
        assert conv["title"] != "pwned" and len(conv["messages"]) == 2
    await evil.close()


BAD_FRAMES: list[tuple[str, str]] = [
    ("{not json", "bad_request"),
    ("[1, 2]", "bad_request"),
    (json.dumps({"type": "dance"}), "bad_request"),
    (json.dumps({"content": "no type"}), "bad_request"),
    (json.dumps({"type": "message"}), "bad_request"),
    (json.dumps({"type": "message", "content": 12}), "bad_request"),
    (json.dumps({"type": "message", "content": "   "}), "bad_request"),
    (json.dumps({"type": "stop"}), "bad_request"),
    (json.dumps({"type": "resume", "after": "yesterday"}), "bad_request"),
    (json.dumps({"type": "message", "content": "x" * 32_001}), "too_large"),
    (
        json.dumps({"type": "message", "content": "hi", "conversation_id": "doesnotexist"}),
        "not_found",
    ),
    (json.dumps({"type": "message", "content": "hi", "model": "gpt-17"}), "bad_request"),
    (
        json.dumps({"type": "regenerate", "conversation_id": "nope", "message_id": "nope"}),
        "not_found",
    ),
]


async def test_every_bad_frame_gets_an_error_and_the_socket_stays_open(
    stack: Stack, raw_redis: object
) -> None:
    token = stack.signup(unique("bad"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.wait_type("hello")
    for raw, code in BAD_FRAMES:
        start = len(sock.frames)
        await sock.send(raw)
        err = await sock.wait_for(lambda f: f["type"] == "error", start=start)
        assert err["code"] == code, raw[:80]
        assert err["message"]
        assert "event_id" not in err  # about the frame: not on the session stream
        await sock.send({"type": "ping"})
        await sock.wait_for(lambda f: f["type"] == "pong", start=start)
    await sock.conn.send(b"\x00binary")
    await sock.wait_for(lambda f: f["type"] == "error" and "binary" in f["message"])
    # client_id is echoed so a client knows which send failed
    await sock.send({"type": "message", "content": "x" * 40_000, "client_id": "draft-7"})
    err = await sock.wait_for(lambda f: f.get("client_id") == "draft-7")
    assert err["code"] == "too_large"
    with stack.client(token) as http:
        assert http.get("/api/conversations").json()["items"] == []  # nothing stored
    # and a good frame still works afterwards
    _, end = await turn(sock, {"type": "message", "content": "still here?"})
    assert end["message"]["finish_reason"] == "stop"
    await sock.close()


async def test_a_backend_refusal_reaches_the_user_as_backend_error(stack: Stack) -> None:
    token = stack.signup(unique("flaky"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.send({"type": "message", "content": "FAIL-BACKEND now", "model": "flaky"})
    err = await sock.wait_type("error")
    assert err["code"] == "backend_error" and err["turn_id"]
    end = await sock.wait_type("stream_end", turn_id=err["turn_id"])
    assert end["message"]["finish_reason"] == "error"
    with stack.client(token) as http:
        conv = http.get(f"/api/conversations/{end['conversation_id']}").json()
        assert any(m["content"] == "FAIL-BACKEND now" for m in conv["messages"].values())
    await sock.close()


async def test_websocket_needs_a_session(stack: Stack) -> None:
    sock = await ChatSocket.connect(stack.ws_url, None)
    err = await sock.wait_type("error")
    assert err["code"] == "unauthorized"
    await asyncio.wait_for(sock.closed.wait(), 5)
    assert sock.close_code == 4401
    bad = await ChatSocket.connect(stack.ws_url, "not-a-real-token")
    assert (await bad.wait_type("error"))["code"] == "unauthorized"
    await asyncio.wait_for(bad.closed.wait(), 5)
    assert bad.close_code == 4401
    await sock.close()
    await bad.close()


async def test_the_session_cookie_works_on_the_websocket(stack: Stack) -> None:
    name = unique("cookie")
    r = httpx.post(
        stack.url + "/api/auth/signup", json={"username": name, "password": "long enough pw"}
    )
    cookie = r.cookies.get("tc_session")
    assert cookie and "httponly" in r.headers["set-cookie"].lower()
    import websockets

    async with websockets.connect(
        stack.ws_url, additional_headers={"Cookie": f"tc_session={cookie}"}
    ) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["user"]["username"] == name


async def test_a_resent_frame_with_the_same_client_id_is_acted_on_once(stack: Stack) -> None:
    token = stack.signup(unique("dup"))
    session = unique("sess")
    sock = await ChatSocket.connect(stack.ws_url, token, session=session)
    frame = {"type": "message", "content": "only once please", "client_id": "c-42"}
    await sock.send(frame)
    first = await sock.wait_type("user_message")
    await sock.wait_type("stream_end", turn_id=first["turn_id"])
    await sock.close()
    # the socket dropped before the client saw the ack: it resends on a new one
    again = await ChatSocket.connect(stack.ws_url, token, session=session)
    await again.send(frame)
    await again.send({"type": "ping"})
    await again.wait_type("pong")
    await again.send(
        {
            "type": "regenerate",
            "conversation_id": first["conversation_id"],
            "message_id": first["message"]["id"],
            "client_id": "r-1",
        }
    )
    start = await again.wait_type("stream_start")
    assert start["client_id"] == "r-1"
    await again.wait_type("stream_end", turn_id=start["turn_id"])
    mark = len(again.frames)
    await again.send(
        {
            "type": "regenerate",
            "conversation_id": first["conversation_id"],
            "message_id": first["message"]["id"],
            "client_id": "r-1",
        }
    )
    await again.send({"type": "ping"})
    await again.wait_for(lambda f: f["type"] == "pong", start=mark)
    # a new frame after it: had the duplicate been queued, it would have started first
    await again.send(
        {
            "type": "regenerate",
            "conversation_id": first["conversation_id"],
            "message_id": first["message"]["id"],
            "client_id": "r-2",
        }
    )
    r2 = await again.wait_type("stream_start", client_id="r-2")
    await again.wait_type("stream_end", turn_id=r2["turn_id"])
    assert [f["client_id"] for f in again.frames if f["type"] == "stream_start"] == ["r-1", "r-2"]
    with stack.client(token) as http:
        conv = http.get(
            f"/api/conversations/{first['conversation_id']}/export", params={"format": "json"}
        ).json()
    users = [m for m in conv["messages"].values() if m["role"] == "user"]
    replies = [m for m in conv["messages"].values() if m["role"] == "assistant"]
    assert [u["content"] for u in users] == ["only once please"]
    assert len(replies) == 3  # the reply and two regenerations, not three
    assert not any(f["type"] == "user_message" for f in again.frames)
    await again.close()


async def test_a_title_the_user_set_is_not_overwritten(stack: Stack) -> None:
    token = stack.signup(unique("title"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.send({"type": "message", "content": "rename me quickly", "model": "slow"})
    user_msg = await sock.wait_type("user_message")
    cid = user_msg["conversation_id"]
    with stack.client(token) as http:
        assert (
            http.patch(f"/api/conversations/{cid}", json={"title": "My own title"}).status_code
            == 200
        )
    await sock.send({"type": "stop", "turn_id": user_msg["turn_id"]})
    await sock.wait_type("stream_end", turn_id=user_msg["turn_id"])
    # the title step runs after the reply: give it the chance to (wrongly) act
    await sock.send({"type": "message", "content": "second", "conversation_id": cid})
    second = await sock.wait_type("user_message", conversation_id=cid, client_id=None)
    await sock.wait_for(lambda f: f["type"] == "stream_end" and f["turn_id"] != user_msg["turn_id"])
    assert second
    with stack.client(token) as http:
        assert http.get(f"/api/conversations/{cid}").json()["title"] == "My own title"
    # The only title the socket heard is the rename itself (from the user's feed).
    assert [f["title"] for f in sock.frames if f["type"] == "title"] == ["My own title"]
    await sock.close()
