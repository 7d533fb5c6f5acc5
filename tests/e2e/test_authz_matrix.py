"""The authorization matrix, generated from the app's own route table and the
WebSocket client-frame union: every HTTP route and every frame type x {the
owner, another user, anonymous, a revoked sign-in} -> the expected answer,
through a real gateway process on real Redis.

A route or frame type added without an entry here fails
``test_every_route_and_frame_type_has_an_entry``; so does an entry whose
route is gone. Whatever another user, an anonymous caller or a revoked
sign-in gets back never contains a byte of the owner's conversation, and
the owner's conversation is unchanged by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from starlette.routing import Route, WebSocketRoute

from gateway.app import create_app
from gateway.config import GatewaySettings
from shared.protocol import ClientFrame
from tests.e2e.authz_admin import ADMIN_HTTP, ADMIN_PERSONAS
from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e

PERSONAS = ("owner", "other", "anonymous", "revoked")
PASSWORD = "correct horse battery"  # everyone's but the owner's
ALICE_PASSWORD = "alice's very own password"
SECRET = "ALICE-SECRET-" + uuid.uuid4().hex
WEB_BUILT = (Path(__file__).resolve().parents[2] / "web" / "dist" / "index.html").is_file()
MAX_REQUEST_BYTES = 64 * 1024
MAX_IMPORT_BYTES = 256 * 1024
MAX_FILE_BYTES = 100_000

MODELS = """
[[models]]
id = "scripted"
label = "Scripted (fast)"
backend = "scripted"
reply_tokens = 16
tokens_per_second = 0

[[models]]
id = "slow"
label = "Scripted (slow)"
backend = "scripted"
reply_tokens = 80
tokens_per_second = 20
"""


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


# --- the world the matrix runs in ---------------------------------------------


@dataclass
class World:
    stack: Stack
    alice: str  # the owner's token
    alice_name: str
    bob: str  # another user's token
    revoked: str  # a sign-in of the owner's that has logged out
    cid: str  # the owner's conversation
    user_message_id: str
    reply_id: str
    session: str  # the owner's session
    alice_id: str = ""  # the owner is the first account: an admin
    carol: str = ""  # a sign-in of an account an admin then disabled
    file_id: str = ""  # the owner's uploaded file
    collection_id: str = ""  # the owner's knowledge collection, with one file
    collection_file_id: str = ""
    #: Everything non-owners got back, to search for the owner's data.
    seen_by_others: list[str] = field(default_factory=list)

    def login(self, name: str, user_agent: str = "matrix") -> str:
        r = httpx.post(
            self.stack.url + "/api/auth/login",
            json={"username": name, "password": ALICE_PASSWORD},
            headers={"User-Agent": user_agent},
        )
        r.raise_for_status()
        return str(r.json()["token"])

    def token(self, persona: str) -> str | None:
        return {
            "owner": self.alice,
            "admin": self.alice,
            "other": self.bob,
            "user": self.bob,
            "anonymous": None,
            "disabled": self.carol,
        }.get(persona, self.revoked)

    def http(self, token: str | None) -> httpx.Client:
        return self.stack.client(token)


async def _first_turn(stack: Stack, token: str, session: str) -> dict[str, Any]:
    sock = await ChatSocket.connect(stack.ws_url, token, session=session)
    await sock.send({"type": "message", "content": f"my plan: {SECRET}"})
    end = await sock.wait_type("stream_end")
    await sock.close()
    return end


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "TIDECHAT_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        "TIDECHAT_IMPORT_MAX_BYTES": str(MAX_IMPORT_BYTES),
        # Keys of its own: the owner is the first account, so an admin.
        "TIDECHAT_KEY_PREFIX": f"{unique('matrix')}:",
        "TIDECHAT_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
    }
    with running_stack(
        redis_url, tmp_path_factory.mktemp("matrix"), models=MODELS, env=env, workers=1
    ) as s:
        yield s


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    alice_name = unique("alice")
    alice = stack.signup(alice_name, ALICE_PASSWORD)
    bob = stack.signup(unique("bob"))
    session = unique("alice-tab-")
    end = asyncio.run(_first_turn(stack, alice, session))
    w = World(
        stack,
        alice,
        alice_name,
        bob,
        revoked="",
        cid=end["conversation_id"],
        user_message_id=end["message"]["parent_id"],
        reply_id=end["turn_id"],
        session=session,
    )
    with stack.client(alice) as http:
        w.file_id = http.post("/api/files", files=_note_file()).json()["id"]
        w.collection_id = http.post("/api/collections", json={"name": "Handbook"}).json()["id"]
        w.collection_file_id = http.post(
            f"/api/files?collection={w.collection_id}", files=_note_file()
        ).json()["id"]
    w.revoked = w.login(alice_name)
    assert httpx.post(stack.url + "/api/auth/logout", headers=_bearer(w.revoked)).status_code == 204
    with w.http(alice) as http:
        me = http.get("/api/auth/me").json()
        assert me["is_admin"], "the matrix's owner must be the first account"
        w.alice_id = me["id"]
        w.carol = stack.signup(unique("carol"))
        carol_id = httpx.get(stack.url + "/api/auth/me", headers=_bearer(w.carol)).json()["id"]
        assert (
            http.patch(f"/api/admin/users/{carol_id}", json={"disabled": True}).status_code == 204
        )
    return w


def _note_file() -> dict[str, Any]:
    return {"file": ("note.txt", f"my plan: {SECRET}".encode(), "text/plain")}


def _files_not_alices(r: httpx.Response, w: World) -> None:
    assert w.file_id not in r.text and "note.txt" not in r.text


def _own_fresh_file(w: World, persona: str) -> Call:
    if persona == "owner":  # deleting the shared one would spoil the other rows
        with w.http(w.alice) as http:
            fid = http.post("/api/files", files=_note_file()).json()["id"]
        return Call("DELETE", f"/api/files/{fid}")
    return Call("DELETE", f"/api/files/{w.file_id}")


def _own_fresh_collection(w: World, persona: str) -> Call:
    if persona == "owner":  # deleting the shared one would spoil the other rows
        with w.http(w.alice) as http:
            colid = http.post("/api/collections", json={"name": "to delete"}).json()["id"]
        return Call("DELETE", f"/api/collections/{colid}")
    return Call("DELETE", f"/api/collections/{w.collection_id}")


def _own_fresh_collection_file(w: World, persona: str) -> Call:
    fid = w.collection_file_id
    if persona == "owner":
        with w.http(w.alice) as http:
            url = f"/api/files?collection={w.collection_id}"
            fid = http.post(url, files=_note_file()).json()["id"]
    return Call("DELETE", f"/api/collections/{w.collection_id}/files/{fid}")


def _collections_not_alices(r: httpx.Response, w: World) -> None:
    assert w.collection_id not in r.text and "Handbook" not in r.text


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


# --- HTTP: one entry per route ---------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    token_override: str | None = None  # a fresh token instead of the persona's
    files: Any = None  # multipart upload


Check = Callable[[httpx.Response, World], None]


@dataclass(frozen=True)
class Entry:
    """How to call a route as a persona, and what each persona must get."""

    build: Callable[[World, str], Call]
    expect: dict[str, int]
    check: dict[str, Check] = field(default_factory=dict)


def _public(status: int) -> dict[str, int]:
    return dict.fromkeys(PERSONAS, status)


def _signed_in(owner: int, other: int) -> dict[str, int]:
    return {"owner": owner, "other": other, "anonymous": 401, "revoked": 401}


def _not_alices(r: httpx.Response, w: World) -> None:
    assert w.cid not in r.text and SECRET not in r.text


def _own_fresh_conversation(w: World, persona: str) -> Call:
    if persona == "owner":  # deleting the shared one would spoil the other rows
        with w.http(w.alice) as http:
            cid = http.post("/api/conversations", json={"title": "to delete"}).json()["id"]
        return Call("DELETE", f"/api/conversations/{cid}")
    return Call("DELETE", f"/api/conversations/{w.cid}")


def _end_sign_in(w: World, persona: str) -> Call:
    """The owner ends one of her other sign-ins; everyone else tries the same id."""
    agent = unique("to-end-")
    w.login(w.alice_name, user_agent=agent)
    with w.http(w.alice) as http:
        sessions = http.get("/api/auth/sessions").json()["sessions"]
    target = next(s["id"] for s in sessions if s["user_agent"] == agent)
    return Call("DELETE", f"/api/auth/sessions/{target}")


def _change_password(w: World, persona: str) -> Call:
    if persona == "owner":  # on an account of its own: the owner's other sign-ins must live on
        body = {"current_password": PASSWORD, "new_password": "a whole new secret"}
        return Call("POST", "/api/auth/password", body, w.stack.signup(unique("mover")))
    # Alice's password does not change Bob's (nor, of course, hers).
    body = {"current_password": ALICE_PASSWORD, "new_password": "a whole new secret"}
    return Call("POST", "/api/auth/password", body)


def _log_out(w: World, persona: str) -> Call:
    fresh = {"owner": lambda: w.login(w.alice_name), "other": lambda: w.stack.signup(unique("b"))}
    token = fresh[persona]() if persona in fresh else None
    return Call("POST", "/api/auth/logout", token_override=token)


def _me_is_not_alice(r: httpx.Response, w: World) -> None:
    assert r.json()["username"] != w.alice_name


def _sessions_are_own(r: httpx.Response, w: World) -> None:
    assert all(s["user_agent"] != "matrix" for s in r.json()["sessions"])


EXPORT = {"format": "tidechat.conversation.v1", "title": "imported", "messages": {}}

HTTP: dict[tuple[str, str], Entry] = {
    ("GET", "/health"): Entry(lambda w, p: Call("GET", "/health"), _public(200)),
    ("GET", "/ready"): Entry(lambda w, p: Call("GET", "/ready"), _public(200)),
    # /metrics needs the operator's metrics token (the stack sets one): no
    # user's sign-in, however valid, opens it.
    ("GET", "/metrics"): Entry(lambda w, p: Call("GET", "/metrics"), _public(401)),
    ("GET", "/openapi.json"): Entry(lambda w, p: Call("GET", "/openapi.json"), _public(200)),
    ("GET", "/docs"): Entry(lambda w, p: Call("GET", "/docs"), _public(200)),
    ("GET", "/docs/oauth2-redirect"): Entry(
        lambda w, p: Call("GET", "/docs/oauth2-redirect"), _public(200)
    ),
    ("GET", "/redoc"): Entry(lambda w, p: Call("GET", "/redoc"), _public(200)),
    ("GET", "/{path:path}"): Entry(
        lambda w, p: Call("GET", "/c/some-client-route"), _public(200 if WEB_BUILT else 404)
    ),
    ("POST", "/api/auth/signup"): Entry(
        lambda w, p: Call(
            "POST", "/api/auth/signup", {"username": unique("s"), "password": PASSWORD}
        ),
        _public(201),
    ),
    ("POST", "/api/auth/login"): Entry(
        lambda w, p: Call(
            "POST", "/api/auth/login", {"username": w.alice_name, "password": "wrong!"}
        ),
        _public(401),
    ),
    ("POST", "/api/auth/logout"): Entry(_log_out, _public(204)),
    # What the sign-in page needs before anyone signs in: public, and says
    # nothing about any account.
    ("GET", "/api/auth/status"): Entry(lambda w, p: Call("GET", "/api/auth/status"), _public(200)),
    # Looking an invite up: public (the invitee has no account yet); a token
    # that is no invite tells nothing.
    ("POST", "/api/auth/invite"): Entry(
        lambda w, p: Call("POST", "/api/auth/invite", {"token": "not-an-invite"}), _public(404)
    ),
    ("GET", "/api/auth/me"): Entry(
        lambda w, p: Call("GET", "/api/auth/me"),
        _signed_in(200, 200),
        {"other": _me_is_not_alice},
    ),
    ("POST", "/api/auth/password"): Entry(_change_password, _signed_in(204, 401)),
    ("GET", "/api/auth/sessions"): Entry(
        lambda w, p: Call("GET", "/api/auth/sessions"),
        _signed_in(200, 200),
        {"other": _sessions_are_own},
    ),
    ("DELETE", "/api/auth/sessions/{sign_in_id}"): Entry(_end_sign_in, _signed_in(204, 404)),
    ("GET", "/api/conversations"): Entry(
        lambda w, p: Call("GET", "/api/conversations"),
        _signed_in(200, 200),
        {"other": _not_alices},
    ),
    ("POST", "/api/conversations"): Entry(
        lambda w, p: Call("POST", "/api/conversations", {"title": "new"}), _signed_in(201, 201)
    ),
    ("GET", "/api/conversations/{cid}"): Entry(
        lambda w, p: Call("GET", f"/api/conversations/{w.cid}"), _signed_in(200, 404)
    ),
    ("PATCH", "/api/conversations/{cid}"): Entry(
        lambda w, p: Call(
            "PATCH",
            f"/api/conversations/{w.cid}",
            {"title": "Alice's" if p == "owner" else "pwned"},
        ),
        _signed_in(200, 404),
    ),
    ("POST", "/api/conversations/{cid}/branch"): Entry(
        lambda w, p: Call(
            "POST", f"/api/conversations/{w.cid}/branch", {"message_id": w.user_message_id}
        ),
        _signed_in(200, 404),
    ),
    ("DELETE", "/api/conversations/{cid}"): Entry(_own_fresh_conversation, _signed_in(204, 404)),
    ("GET", "/api/conversations/{cid}/export"): Entry(
        lambda w, p: Call("GET", f"/api/conversations/{w.cid}/export?format=json"),
        _signed_in(200, 404),
    ),
    ("POST", "/api/conversations/import"): Entry(
        lambda w, p: Call("POST", "/api/conversations/import", EXPORT), _signed_in(201, 201)
    ),
    ("POST", "/api/chat"): Entry(
        lambda w, p: Call("POST", "/api/chat", {"content": "more", "conversation_id": w.cid}),
        _signed_in(200, 404),
    ),
    # Tools (issue 15): answering an approval over HTTP. No call waits in
    # this stack: refused for everyone; another user's answer to a waiting
    # call gets the same 404 (tests/e2e/test_tools.py).
    ("POST", "/api/turns/{turn_id}/approvals/{call_id}"): Entry(
        lambda w, p: Call("POST", f"/api/turns/{'0' * 32}/approvals/c1", {"approve": True}),
        _signed_in(404, 404),
    ),
    ("GET", "/api/models"): Entry(lambda w, p: Call("GET", "/api/models"), _signed_in(200, 200)),
    ("GET", "/api/quota"): Entry(lambda w, p: Call("GET", "/api/quota"), _signed_in(200, 200)),
    ("POST", "/api/files"): Entry(
        lambda w, p: Call("POST", "/api/files", files={"file": ("n.txt", b"notes", "text/plain")}),
        _signed_in(201, 201),
    ),
    ("GET", "/api/files"): Entry(
        lambda w, p: Call("GET", "/api/files"),
        _signed_in(200, 200),
        {"other": _files_not_alices},
    ),
    ("GET", "/api/files/{file_id}"): Entry(
        lambda w, p: Call("GET", f"/api/files/{w.file_id}"), _signed_in(200, 404)
    ),
    ("DELETE", "/api/files/{file_id}"): Entry(_own_fresh_file, _signed_in(204, 404)),
    ("GET", "/api/files/{file_id}/content"): Entry(
        lambda w, p: Call("GET", f"/api/files/{w.file_id}/content"), _signed_in(200, 404)
    ),
    # Knowledge collections: another user's id is not found, whatever the route.
    ("POST", "/api/collections"): Entry(
        lambda w, p: Call("POST", "/api/collections", {"name": "mine"}), _signed_in(201, 201)
    ),
    ("GET", "/api/collections"): Entry(
        lambda w, p: Call("GET", "/api/collections"),
        _signed_in(200, 200),
        {"other": _collections_not_alices},
    ),
    ("GET", "/api/collections/{collection_id}"): Entry(
        lambda w, p: Call("GET", f"/api/collections/{w.collection_id}"), _signed_in(200, 404)
    ),
    ("PATCH", "/api/collections/{collection_id}"): Entry(
        lambda w, p: Call("PATCH", f"/api/collections/{w.collection_id}", {"name": "Handbook"}),
        _signed_in(200, 404),
    ),
    ("DELETE", "/api/collections/{collection_id}"): Entry(
        _own_fresh_collection, _signed_in(204, 404)
    ),
    ("GET", "/api/collections/{collection_id}/files"): Entry(
        lambda w, p: Call("GET", f"/api/collections/{w.collection_id}/files"),
        _signed_in(200, 404),
    ),
    ("DELETE", "/api/collections/{collection_id}/files/{file_id}"): Entry(
        _own_fresh_collection_file, _signed_in(204, 404)
    ),
    ("GET", "/api/conversations/{conversation_id}/collections"): Entry(
        lambda w, p: Call("GET", f"/api/conversations/{w.cid}/collections"),
        _signed_in(200, 404),
    ),
    ("PUT", "/api/conversations/{conversation_id}/collections/{collection_id}"): Entry(
        lambda w, p: Call("PUT", f"/api/conversations/{w.cid}/collections/{w.collection_id}"),
        _signed_in(204, 404),
    ),
    ("DELETE", "/api/conversations/{conversation_id}/collections/{collection_id}"): Entry(
        lambda w, p: Call("DELETE", f"/api/conversations/{w.cid}/collections/{w.collection_id}"),
        _signed_in(204, 404),
    ),
}

#: The WebSocket route: connecting to the owner's session.
WS_ROUTES = {"/ws": {"owner": "hello", "other": 4403, "anonymous": 4401, "revoked": 4401}}


# --- WebSocket frames: one entry per type of the client-frame union ------------------


@dataclass(frozen=True)
class FrameEntry:
    """Sent by the owner on her socket, by another user on his (he cannot join
    hers: see WS_ROUTES) naming her things; anonymous and revoked callers
    never get a socket to send it on (4401)."""

    build: Callable[[World, str | None], dict[str, Any]]
    owner: str  # the frame type the owner gets back
    other: str  # what another user gets back


FRAMES: dict[str, FrameEntry] = {
    "message": FrameEntry(
        lambda w, t: {"type": "message", "content": "go on", "conversation_id": w.cid},
        owner="stream_end",
        other="error:not_found",
    ),
    "regenerate": FrameEntry(
        lambda w, t: {"type": "regenerate", "conversation_id": w.cid, "message_id": w.reply_id},
        owner="stream_end",
        other="error:not_found",
    ),
    "edit": FrameEntry(
        lambda w, t: {
            "type": "edit",
            "conversation_id": w.cid,
            "message_id": w.user_message_id,
            "content": "edited",
        },
        owner="stream_end",
        other="error:not_found",
    ),
    # Stopping the owner's running turn: hers stops; another user's stop is ignored.
    "stop": FrameEntry(
        lambda w, t: {"type": "stop", "turn_id": t}, owner="stopped", other="not stopped"
    ),
    # Replaying from the start of the socket's session: only its own events.
    "resume": FrameEntry(
        lambda w, t: {"type": "resume", "after": "0-0"}, owner="replayed", other="nothing"
    ),
    "ping": FrameEntry(lambda w, t: {"type": "ping"}, owner="pong", other="pong"),
    # Tools (issue 15): no call waits for approval in this stack, so both are
    # refused; an answer that counts, and another user's that does not, are
    # tested in tests/e2e/test_tools.py and tests/worker/test_tools.py.
    "approve": FrameEntry(
        lambda w, t: {
            "type": "approve",
            "turn_id": t or "0" * 32,
            "call_id": "c1",
            "approve": True,
        },
        owner="error",
        other="error:not_found",
    ),
    # Watching a conversation: the owner's socket receives the turns her other
    # tabs run in it; another user watching her conversation receives nothing
    # of it, not even while she chats in it.
    "watch": FrameEntry(
        lambda w, t: {"type": "watch", "conversation_id": w.cid}, owner="followed", other="nothing"
    ),
}


def frame_types() -> set[str]:
    union = typing.get_args(ClientFrame)[0]
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in typing.get_args(union)}


def app_routes() -> tuple[set[tuple[str, str]], set[str]]:
    """(method, path) of every HTTP route, and every WebSocket path, as the
    app routes them (FastAPI flattens included routers lazily: ask it)."""
    app = create_app(GatewaySettings())
    http: set[tuple[str, str]] = set()
    ws: set[str] = set()
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path
        if isinstance(route, WebSocketRoute | APIWebSocketRoute):
            ws.add(path)
        elif isinstance(route, APIRoute | Route):
            http |= {(m, path) for m in context.methods or () if m != "HEAD"}
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return http, ws


def test_every_route_and_frame_type_has_an_entry() -> None:
    http, ws = app_routes()
    table = set(HTTP) | set(ADMIN_HTTP)
    assert not set(HTTP) & set(ADMIN_HTTP)
    assert http == table, (
        f"routes without an entry: {sorted(http - table)}; "
        f"entries without a route: {sorted(table - http)}"
    )
    assert all(path.startswith("/api/admin/") for _, path in ADMIN_HTTP)
    assert not any(path.startswith("/api/admin/") for _, path in HTTP)
    assert ws == set(WS_ROUTES)
    assert frame_types() == set(FRAMES)
    for entry in HTTP.values():
        assert set(entry.expect) == set(PERSONAS)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("route", sorted(HTTP), ids=lambda r: f"{r[0]} {r[1]}")
def test_http_route(world: World, route: tuple[str, str], persona: str) -> None:
    entry = HTTP[route]
    call = entry.build(world, persona)
    token = call.token_override if call.token_override is not None else world.token(persona)
    with world.http(token) as http:
        r = http.request(call.method, call.path, json=call.json, files=call.files)
    assert r.status_code == entry.expect[persona], (route, persona, r.text[:300])
    if persona in entry.check:
        entry.check[persona](r, world)
    if persona != "owner":
        assert SECRET not in r.text, (route, persona)
        world.seen_by_others.append(r.text)


@pytest.mark.parametrize("persona", ADMIN_PERSONAS)
@pytest.mark.parametrize("route", sorted(ADMIN_HTTP), ids=lambda r: f"{r[0]} {r[1]}")
def test_admin_route(world: World, route: tuple[str, str], persona: str) -> None:
    """Only an admin gets in; a user gets 403, anonymous and disabled 401, and
    what they aimed at (the admin's own account) is untouched."""
    entry = ADMIN_HTTP[route]
    call = entry.build(world, persona)
    with world.http(world.token(persona)) as http:
        r = http.request(call.method, call.path, json=call.json)
    assert r.status_code == entry.expect(persona), (route, persona, r.text[:300])
    if persona != "admin":
        assert r.json()["error"]["code"] == ("forbidden" if persona == "user" else "unauthorized")
        assert SECRET not in r.text
        with world.http(world.alice) as http:
            me = http.get("/api/auth/me")
        assert me.status_code == 200 and me.json()["is_admin"], (route, persona)


async def test_websocket_route(world: World) -> None:
    for persona, expected in WS_ROUTES["/ws"].items():
        sock = await ChatSocket.connect(
            world.stack.ws_url, world.token(persona), session_protocol=world.session
        )
        if expected == "hello":
            assert (await sock.wait_type("hello"))["session"] == world.session
        else:
            await asyncio.wait_for(sock.closed.wait(), 10)
            assert sock.close_code == expected, persona
            assert not any(f.get("event_id") for f in sock.frames)
            world.seen_by_others.append(json.dumps(sock.frames))
        await sock.close()


async def _send_as_owner(world: World, sock: ChatSocket, name: str) -> None:
    entry = FRAMES[name]
    if name == "stop":
        start = len(sock.frames)
        await sock.send({"type": "message", "content": "a long one", "model": "slow"})
        turn = (await sock.wait_for(lambda f: f["type"] == "user_message", start=start))["turn_id"]
        await sock.send(entry.build(world, turn))
        end = await sock.wait_type("stream_end", timeout=30, turn_id=turn)
        assert end["message"]["finish_reason"] == "stopped"
        return
    if name == "watch":
        await sock.send(entry.build(world, None))
        await sock.send({"type": "ping"})
        await sock.wait_type("pong")
        tab = await ChatSocket.connect(world.stack.ws_url, world.alice)  # another tab of hers
        await tab.wait_type("hello")
        await tab.send({"type": "message", "content": "more", "conversation_id": world.cid})
        turn = (await tab.wait_type("user_message"))["turn_id"]
        end = await sock.wait_type("stream_end", timeout=30, turn_id=turn)
        assert "event_id" not in end  # followed, not her session's own
        own = await tab.wait_type("stream_end", timeout=30, turn_id=turn)
        assert own["message"] == end["message"]
        assert sock.text_of(turn) == tab.text_of(turn)
        await tab.close()
        return
    start = len(sock.frames)
    await sock.send(entry.build(world, None))
    if entry.owner == "replayed":
        await sock.wait_for(lambda f: SECRET in json.dumps(f), start=start)
        return
    await sock.wait_for(lambda f: f["type"] == entry.owner, start=start, timeout=30)


async def _send_as_other(world: World, name: str) -> None:
    entry = FRAMES[name]
    evil = await ChatSocket.connect(world.stack.ws_url, world.bob)
    await evil.wait_type("hello")
    if name == "stop":
        owner = await ChatSocket.connect(world.stack.ws_url, world.alice, session=world.session)
        await owner.send({"type": "message", "content": "keep going", "model": "slow"})
        turn = (await owner.wait_type("user_message"))["turn_id"]
        await evil.send(entry.build(world, turn))
        end = await owner.wait_type("stream_end", timeout=30, turn_id=turn)
        assert end["message"]["finish_reason"] == "stop"  # not "stopped"
        await owner.close()
    elif entry.other == "nothing":
        await evil.send(entry.build(world, None))
        await evil.send({"type": "ping"})
        await evil.wait_type("pong")
        if name == "watch":
            # She chats in the conversation he watches: none of it reaches him.
            owner = await ChatSocket.connect(world.stack.ws_url, world.alice)
            await owner.send(
                {"type": "message", "content": "keep going", "conversation_id": world.cid}
            )
            turn = (await owner.wait_type("user_message"))["turn_id"]
            await owner.wait_type("stream_end", timeout=30, turn_id=turn)
            await owner.close()
            await evil.send({"type": "ping"})
            await evil.wait_for(lambda f: f["type"] == "pong", start=2)
        assert {f["type"] for f in evil.frames} == {"hello", "pong"}
    else:
        start = len(evil.frames)
        await evil.send(entry.build(world, None))
        kind, _, code = entry.other.partition(":")
        got = await evil.wait_for(lambda f: f["type"] == kind, start=start)
        assert got.get("code", "") == code
        await evil.send({"type": "ping"})
        await evil.wait_for(lambda f: f["type"] == "pong", start=start)
    world.seen_by_others.append(json.dumps(evil.frames))
    await evil.close()


async def _send_without_a_socket(world: World, persona: str, name: str) -> None:
    sock = await ChatSocket.connect(world.stack.ws_url, world.token(persona))
    with contextlib.suppress(Exception):
        await sock.send(FRAMES[name].build(world, "0" * 32))
    await asyncio.wait_for(sock.closed.wait(), 10)
    assert sock.close_code == 4401
    assert [f["type"] for f in sock.frames] == ["error"]
    world.seen_by_others.append(json.dumps(sock.frames))
    await sock.close()


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(FRAMES))
async def test_websocket_frame(world: World, name: str, persona: str) -> None:
    if persona == "owner":
        sock = await ChatSocket.connect(world.stack.ws_url, world.alice, session=world.session)
        await sock.wait_type("hello")
        await _send_as_owner(world, sock, name)
        await sock.close()
    elif persona == "other":
        await _send_as_other(world, name)
    else:
        await _send_without_a_socket(world, persona, name)


def test_nothing_of_the_owners_reached_anyone_else(world: World) -> None:
    """Run last (pytest keeps file order): the sum of the rows above."""
    assert world.seen_by_others, "the matrix did not run"
    for text in world.seen_by_others:
        assert SECRET not in text
    with world.http(world.alice) as http:
        conv = http.get(f"/api/conversations/{world.cid}").json()
    assert conv["title"] != "pwned"
    # Only the owner's own frames and calls added to her conversation.
    contents = {m["content"] for m in conv["messages"].values() if m["role"] == "user"}
    assert contents <= {f"my plan: {SECRET}", "go on", "edited", "more", "a long one", "keep going"}


@pytest.mark.parametrize(
    "route", sorted(set(HTTP) | set(ADMIN_HTTP)), ids=lambda r: f"{r[0]} {r[1]}"
)
def test_every_route_refuses_an_oversized_body(world: World, route: tuple[str, str]) -> None:
    method, path = route
    limit = MAX_IMPORT_BYTES if path.endswith("/import") else MAX_REQUEST_BYTES
    if path.startswith("/api/auth/"):
        limit = 16 * 1024
    if path == "/api/files":  # a file and its multipart envelope
        limit = MAX_FILE_BYTES + 64 * 1024
    concrete = (
        ADMIN_HTTP[route].build(world, "user").path
        if route in ADMIN_HTTP
        else HTTP[route].build(world, "other").path
    )
    with world.http(world.alice) as http:
        r = http.request(
            method,
            concrete,
            content=b" " * (limit + 1),
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 413, (route, r.status_code, r.text[:200])
    assert r.json()["error"]["code"] == "too_large"
