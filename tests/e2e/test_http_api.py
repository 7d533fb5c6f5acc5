"""The HTTP API end to end: accounts, conversations, export/import, SSE chat."""

from __future__ import annotations

import json

import httpx
import pytest

from shared.suggestions import default_suggestions
from tests.e2e.conftest import unique
from tests.support.stack import OPERATOR, Stack, running_stack

pytestmark = pytest.mark.e2e


def sse_events(text: str) -> list[dict[str, object]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "data" in fields:
            data = json.loads(fields["data"])
            assert data["type"] == fields["event"]
            if "id" in fields:
                assert data["event_id"] == fields["id"]
            events.append(data)
    return events


def test_sign_up_log_in_me_log_out(stack: Stack) -> None:
    name = unique("acct")
    with httpx.Client(base_url=stack.url) as http:
        r = http.post("/api/auth/signup", json={"username": name, "password": "hunter22hunter"})
        assert r.status_code == 201
        assert r.json()["user"]["username"] == name
        assert http.get("/api/auth/me").json()["username"] == name  # the cookie signs in
        r = http.post(
            "/api/auth/signup", json={"username": name.upper(), "password": "another pw 1"}
        )
        assert r.status_code == 409
        assert "taken" in r.json()["error"]["message"]
        assert http.post("/api/auth/logout").status_code == 204
        assert http.get("/api/auth/me").status_code == 401
        r = http.post("/api/auth/login", json={"username": name, "password": "wrong password"})
        assert r.status_code == 401
        assert r.json()["error"] == {
            "code": "unauthorized",
            "message": "wrong username or password",
        }
        r = http.post("/api/auth/login", json={"username": name, "password": "hunter22hunter"})
        assert r.status_code == 200
        token = r.json()["token"]
    # the bearer token works for scripts
    r = httpx.get(stack.url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.json()["username"] == name
    for body in (
        {"username": "a", "password": "long enough"},
        {"username": unique("x"), "password": "short"},
    ):
        r = httpx.post(stack.url + "/api/auth/signup", json=body)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "bad_request"


def test_status_and_limits_for_the_client(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A fresh install says it has no account yet (the page opens on sign-up); /api/models
    gives the message length limit the composer counts against."""
    env = {"TIDECHAT_KEY_PREFIX": f"{unique('fresh')}:", "TIDECHAT_MAX_MESSAGE_CHARS": "1234"}
    with (
        running_stack(redis_url, tmp_path_factory.mktemp("fresh"), workers=1, env=env) as fresh,
        httpx.Client(base_url=fresh.url) as http,
    ):
        assert http.get("/api/auth/status").json() == {
            "has_users": False,
            "signup_open": True,
            "signup_mode": "open",
        }
        http.post("/api/auth/signup", json={"username": "founder", "password": "first account"})
        assert http.get("/api/auth/status").json() == {
            "has_users": True,
            "signup_open": True,
            "signup_mode": "open",
        }
        assert http.get("/api/models").json()["max_message_chars"] == 1234


def test_routes_need_a_session(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as http:
        for method, path in [
            ("GET", "/api/conversations"),
            ("GET", "/api/models"),
            ("POST", "/api/chat"),
            ("GET", "/api/auth/me"),
        ]:
            r = http.request(method, path, json={"content": "x"} if method == "POST" else None)
            assert r.status_code == 401, path
        assert http.get("/health").json() == {"status": "ok"}
        ready = http.get("/ready", headers=OPERATOR).json()
        assert ready["ready"] is True
        assert ready["pools"]["default"]["live_workers"] == 2
        assert "tidechat_gateway_sockets" in http.get("/metrics", headers=OPERATOR).text


def test_conversations_create_list_search_page_rename_delete(stack: Stack) -> None:
    token = stack.signup(unique("convs"))
    with stack.client(token) as http:
        created = []
        for i in range(5):
            r = http.post(
                "/api/conversations", json={"title": f"Chat number {i}", "system_prompt": "be kind"}
            )
            assert r.status_code == 201
            created.append(r.json())
        assert created[0]["system_prompt"] == "be kind"
        assert created[0]["model"] == "scripted"
        page = http.get("/api/conversations?limit=2").json()
        assert [c["id"] for c in page["items"]] == [created[4]["id"], created[3]["id"]]
        page2 = http.get(f"/api/conversations?limit=2&cursor={page['next_cursor']}").json()
        assert [c["id"] for c in page2["items"]] == [created[2]["id"], created[1]["id"]]
        cid = created[1]["id"]
        r = http.patch(
            f"/api/conversations/{cid}", json={"title": "Holiday plans", "model": "slow"}
        )
        assert r.json()["title"] == "Holiday plans"
        assert r.json()["model"] == "slow"
        assert http.get("/api/conversations").json()["items"][0]["id"] == cid  # updated: newest
        assert [c["id"] for c in http.get("/api/conversations?q=holiday").json()["items"]] == [cid]
        r = http.patch(f"/api/conversations/{cid}", json={"model": "nope"})
        assert r.status_code == 400
        r = http.patch(f"/api/conversations/{cid}", json={"current_id": "nosuchmessage"})
        assert r.status_code == 404
        r = http.patch(f"/api/conversations/{cid}", json={"title": ""})
        assert r.status_code == 400
        assert http.delete(f"/api/conversations/{cid}").status_code == 204
        assert http.get(f"/api/conversations/{cid}").status_code == 404
        assert cid not in [c["id"] for c in http.get("/api/conversations").json()["items"]]
        assert http.get("/api/conversations?cursor=garbage").status_code == 400
        models = http.get("/api/models").json()["models"]
        assert [m["id"] for m in models] == ["scripted", "slow", "flaky"]
        assert models[0]["default"] is True
        # What the empty chat suggests: a backend's defaults, the models file's own, or none.
        assert models[0]["suggestions"] == [s.model_dump() for s in default_suggestions("scripted")]
        assert models[1]["suggestions"] == [
            {"title": "Wait for it", "prompt": "Tell me a long story."}
        ]
        assert models[2]["suggestions"] == []


def test_sse_chat_streams_a_turn_and_search_finds_its_text(stack: Stack) -> None:
    token = stack.signup(unique("sse"))
    with stack.client(token) as http:
        with http.stream("POST", "/api/chat", json={"content": "What do otters eat?"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            body = r.read().decode()
        events = sse_events(body)
        types = [e["type"] for e in events]
        assert types[:3] == ["conversation_created", "user_message", "stream_start"]
        assert types[-1] == "stream_end"
        # a reply generated at once comes whole in stream_end, a slow one in chunks
        assert set(types[3:-1]) <= {"stream_chunk"}
        end = events[-1]
        text = "".join(str(e["chunk"]) for e in events if e["type"] == "stream_chunk")
        assert str(end["message"]["content"]).startswith(text)  # type: ignore[index]
        cid = str(end["conversation_id"])
        # a follow-up in the same conversation, then the stored history
        with http.stream(
            "POST", "/api/chat", json={"content": "And beavers?", "conversation_id": cid}
        ) as r:
            second = sse_events(r.read().decode())
        assert second[0]["type"] == "user_message"
        # a reply that takes a while streams in chunks, as text arrives
        with http.stream(
            "POST", "/api/chat", json={"content": "Slowly", "conversation_id": cid, "model": "slow"}
        ) as r:
            slow = sse_events(r.read().decode())
        chunks = [str(e["chunk"]) for e in slow if e["type"] == "stream_chunk"]
        assert len(chunks) > 10
        assert str(slow[-1]["message"]["content"]).startswith("".join(chunks))  # type: ignore[index]
        conv = http.get(f"/api/conversations/{cid}").json()
        assert len(conv["messages"]) == 6
        hits = http.get("/api/conversations?q=BEAVERS").json()["items"]
        assert [c["id"] for c in hits] == [cid]
        r = http.post("/api/chat", json={"content": "x" * 32_001})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        r = http.post("/api/chat", json={"content": "hi", "model": "nope"})
        assert r.status_code == 400


def test_export_markdown_and_json_then_import(stack: Stack) -> None:
    token = stack.signup(unique("export"))
    with stack.client(token) as http:
        with http.stream("POST", "/api/chat", json={"content": "Export me **please**"}) as r:
            end = sse_events(r.read().decode())[-1]
        cid = str(end["conversation_id"])
        md = http.get(f"/api/conversations/{cid}/export?format=markdown")
        assert md.headers["content-type"].startswith("text/markdown")
        assert "attachment" in md.headers["content-disposition"]
        assert "Export me **please**" in md.text
        assert str(end["message"]["content"]) in md.text  # type: ignore[index]
        exported = http.get(f"/api/conversations/{cid}/export?format=json")
        assert exported.headers["content-disposition"].endswith('.json"')
        data = exported.json()
        assert data["format"] == "tidechat.conversation.v1"
        r = http.post("/api/conversations/import", json=data)
        assert r.status_code == 201
        copy = r.json()
        assert copy["id"] != cid
        assert copy["title"] == data["title"] + " (imported)"
        again = http.post("/api/conversations/import", json=copy).json()
        assert again["title"] == copy["title"]  # not "(imported) (imported)"
        assert copy["messages"] == data["messages"]
        assert copy["current_id"] == data["current_id"]
        # a broken tree is refused
        bad = json.loads(json.dumps(data))
        first = next(iter(bad["messages"].values()))
        first["parent_id"] = "ghost"
        r = http.post("/api/conversations/import", json=bad)
        assert r.status_code == 400
        assert "parent" in r.json()["error"]["message"]
    other = stack.signup(unique("other"))
    with stack.client(other) as http:
        assert http.get(f"/api/conversations/{copy['id']}").status_code == 404


def test_closed_sign_up_keeps_the_first_admin(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A separate deployment: its own key prefix, sign-up closed.
    env = {"TIDECHAT_SIGNUP_OPEN": "false", "TIDECHAT_KEY_PREFIX": f"{unique('closed')}:"}
    with (
        running_stack(redis_url, tmp_path_factory.mktemp("closed"), workers=1, env=env) as closed,
        httpx.Client(base_url=closed.url) as http,
    ):
        r = http.post("/api/auth/signup", json={"username": "founder", "password": "first account"})
        assert r.status_code == 201
        assert r.json()["user"]["is_admin"] is True
        r = http.post(
            "/api/auth/signup", json={"username": "latecomer", "password": "second account"}
        )
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
        assert "closed" in r.json()["error"]["message"]


def test_openapi_documents_the_api(stack: Stack) -> None:
    spec = httpx.get(stack.url + "/openapi.json").json()
    for path in [
        "/api/auth/signup",
        "/api/conversations",
        "/api/conversations/{cid}",
        "/api/conversations/{cid}/export",
        "/api/conversations/import",
        "/api/chat",
        "/api/models",
        "/health",
        "/ready",
    ]:
        assert path in spec["paths"], path
