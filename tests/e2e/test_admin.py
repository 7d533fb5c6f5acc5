"""The admin API through real gateways (two) and a worker on real Redis:
accounts (create, disable, delete, reset, admin rights), the sign-up mode,
groups and model access, quotas and usage, the audit log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.redis_client import make_redis
from tests.e2e.conftest import unique
from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
MODELS = """
[[models]]
id = "scripted"
label = "Scripted (everyone)"
backend = "scripted"
reply_tokens = 16
tokens_per_second = 0

[[models]]
id = "special"
label = "Scripted (special)"
backend = "scripted"
reply_tokens = 16
tokens_per_second = 0
"""


@dataclass
class Admin:
    stack: Stack
    token: str
    prefix: str

    def http(self, index: int = 0) -> httpx.Client:
        return self.stack.client(self.token, index)


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"TIDECHAT_KEY_PREFIX": f"{unique('adm')}:"}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("admin"), models=MODELS, env=env, gateways=2, workers=1
    ) as s:
        yield s


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Admin:
    token = stack.signup(unique("root"), PASSWORD)  # the first account: the admin
    with stack.client(token) as http:
        assert http.get("/api/auth/me").json()["is_admin"] is True
    return Admin(stack, token, stack.env["TIDECHAT_KEY_PREFIX"])


def login(stack: Stack, name: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(stack.url + "/api/auth/login", json={"username": name, "password": password})


def user_id(stack: Stack, token: str) -> str:
    with stack.client(token) as http:
        return str(http.get("/api/auth/me").json()["id"])


def test_an_ordinary_user_is_refused_and_the_list_shows_usage(stack: Stack, admin: Admin) -> None:
    name = unique("bob")
    bob = stack.signup(name)
    with stack.client(bob) as http:
        r = http.get("/api/admin/users")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    asyncio.run(_one_turn(stack, bob))

    def row() -> dict[str, Any]:
        with admin.http() as http:
            page = http.get("/api/admin/users", params={"q": name[:7]}).json()
        return next(u for u in page["users"] if u["username"] == name)

    eventually(lambda: row()["turns_month"] == 1)
    found = row()
    assert found["is_admin"] is False and found["disabled"] is False
    assert found["last_active_at"] is not None
    # The worker counted the reply's usage (16 tokens of reply + the prompt's).
    assert found["tokens_month"] > 16


async def _one_turn(stack: Stack, token: str, model: str | None = None) -> dict[str, object]:
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.wait_type("hello")
    frame: dict[str, object] = {"type": "message", "content": "hello there"}
    if model:
        frame["model"] = model
    await sock.send(frame)
    got = await sock.wait_for(lambda f: f["type"] in ("stream_end", "error"), timeout=30)
    await sock.close()
    return got


async def test_disabling_ends_the_users_sockets_on_every_gateway(
    stack: Stack, admin: Admin
) -> None:
    name = unique("carol")
    carol = stack.signup(name)
    uid = user_id(stack, carol)
    socks = [
        await ChatSocket.connect(stack.gateway_url(i).replace("http", "ws") + "/ws", carol)
        for i in (0, 1)
    ]
    for sock in socks:
        await sock.wait_type("hello")
    with admin.http() as http:
        assert http.patch(f"/api/admin/users/{uid}", json={"disabled": True}).status_code == 204
    for sock in socks:
        await asyncio.wait_for(sock.closed.wait(), 10)
        assert sock.close_code == 4401
        error = next(f for f in sock.frames if f["type"] == "error")
        assert "disabled" in error["message"]
    r = login(stack, name)
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"
    assert "disabled" in r.json()["error"]["message"]
    with stack.client(carol) as http:
        assert http.get("/api/auth/me").status_code == 401
    with admin.http() as http:
        assert http.patch(f"/api/admin/users/{uid}", json={"disabled": False}).status_code == 204
    assert login(stack, name).status_code == 200


def test_an_account_made_with_a_one_time_password_must_choose_its_own(
    stack: Stack, admin: Admin
) -> None:
    name = unique("dave")
    with admin.http() as http:
        made = http.post("/api/admin/users", json={"username": name}).json()
    one_time = made["password"]
    r = login(stack, name, one_time)
    assert r.status_code == 200 and r.json()["user"]["must_change_password"] is True
    token = r.json()["token"]
    with stack.client(token) as http:
        assert http.get("/api/conversations").status_code == 403
        change = {"current_password": one_time, "new_password": "dave's own secret"}
        assert http.post("/api/auth/password", json=change).status_code == 204
        assert http.get("/api/conversations").status_code == 200
    # A reset: a new one-time password, and every sign-in ends.
    uid = made["user"]["id"]
    with admin.http() as http:
        again = http.post(f"/api/admin/users/{uid}/password").json()["password"]
    with stack.client(token) as http:
        assert http.get("/api/auth/me").status_code == 401
    assert login(stack, name, "dave's own secret").status_code == 401
    assert login(stack, name, again).json()["user"]["must_change_password"] is True


def test_an_invite_link_works_once_and_can_name_the_account(stack: Stack, admin: Admin) -> None:
    name = unique("erin")
    with admin.http() as http:
        made = http.post(
            "/api/admin/users", json={"method": "invite", "username": name, "invite_hours": 1}
        ).json()
        assert any(
            i["id"] == made["invite"]["id"]
            for i in http.get("/api/admin/invites").json()["invites"]
        )
    token = made["invite_path"].split("#", 1)[1]
    signup = {"username": unique("other"), "password": PASSWORD, "invite": token}
    assert httpx.post(stack.url + "/api/auth/signup", json=signup).status_code == 400
    signup["username"] = name
    assert httpx.post(stack.url + "/api/auth/signup", json=signup).status_code == 201
    r = httpx.post(stack.url + "/api/auth/signup", json={**signup, "username": unique("x")})
    assert r.status_code == 403 and "does not work" in r.json()["error"]["message"]


def test_the_signup_mode_is_set_at_run_time_for_every_gateway(stack: Stack, admin: Admin) -> None:
    try:
        for mode in ("closed", "invite_only"):
            with admin.http() as http:
                assert (
                    http.put("/api/admin/settings", json={"signup_mode": mode}).status_code == 200
                )
            for i in (0, 1):
                status = httpx.get(stack.gateway_url(i) + "/api/auth/status").json()
                assert status["signup_mode"] == mode and status["signup_open"] is False
                r = httpx.post(
                    stack.gateway_url(i) + "/api/auth/signup",
                    json={"username": unique("z"), "password": PASSWORD},
                )
                assert r.status_code == 403
                assert ("invite" if mode == "invite_only" else "closed") in r.json()["error"][
                    "message"
                ]
    finally:
        with admin.http() as http:
            http.put("/api/admin/settings", json={"signup_mode": "open"})


def test_there_is_always_an_admin_and_deleting_removes_everything(
    stack: Stack, admin: Admin
) -> None:
    root = user_id(stack, admin.token)
    with admin.http() as http:
        r = http.patch(f"/api/admin/users/{root}", json={"is_admin": False})
        assert r.status_code == 409 and "only admin" in r.json()["error"]["message"]
    name = unique("frank")
    frank = stack.signup(name)
    uid = user_id(stack, frank)
    asyncio.run(_one_turn(stack, frank))
    with stack.client(frank) as http:
        upload = http.post("/api/files", files={"file": ("notes.txt", b"my notes", "text/plain")})
        assert upload.status_code == 201, upload.text
    with admin.http() as http:
        assert http.patch(f"/api/admin/users/{uid}", json={"is_admin": True}).status_code == 204
        # Two admins: one may step down now.
        assert http.patch(f"/api/admin/users/{uid}", json={"is_admin": False}).status_code == 204
        deleted = http.delete(f"/api/admin/users/{uid}").json()
        assert deleted == {"conversations": 1}
        assert all(u["id"] != uid for u in http.get("/api/admin/users").json()["users"])
    with stack.client(frank) as http:
        assert http.get("/api/auth/me").status_code == 401
    assert login(stack, name).status_code == 401
    assert asyncio.run(_keys_of(stack.redis_url, admin.prefix, uid)) == []
    # The name is free again.
    stack.signup(name)


async def _keys_of(redis_url: str, prefix: str, uid: str) -> list[str]:
    client: Redis = make_redis(redis_url)
    try:
        return [k async for k in client.scan_iter(f"{prefix}*{uid}*")]
    finally:
        await client.aclose()


def test_a_model_kept_to_a_group_is_offered_and_served_to_members_only(
    stack: Stack, admin: Admin
) -> None:
    group = unique("team")
    member, outsider = stack.signup(unique("m")), stack.signup(unique("o"))
    with admin.http() as http:
        assert http.post("/api/admin/groups", json={"name": group}).status_code == 201
        uid = user_id(stack, member)
        assert http.put(f"/api/admin/groups/{group}/members/{uid}").status_code == 204
        r = http.put("/api/admin/models/special/access", json={"groups": [group]})
        assert r.status_code == 204
    try:
        for token, offered in ((member, {"scripted", "special"}), (outsider, {"scripted"})):
            with stack.client(token) as http:
                assert {m["id"] for m in http.get("/api/models").json()["models"]} == offered
        refused = asyncio.run(_one_turn(stack, outsider, model="special"))
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        with stack.client(outsider) as http:
            assert http.get("/api/conversations").json()["items"] == []
        assert asyncio.run(_one_turn(stack, member, model="special"))["type"] == "stream_end"
    finally:
        with admin.http() as http:
            http.put("/api/admin/models/special/access", json={"groups": None})


def test_a_daily_turn_quota_is_enforced_and_shown(stack: Stack, admin: Admin) -> None:
    name = unique("gina")
    gina = stack.signup(name)
    uid = user_id(stack, gina)
    with admin.http() as http:
        r = http.put(f"/api/admin/users/{uid}/quotas", json={"turns_day": 1})
        assert r.json()["effective"]["turns_day"] == {"value": 1, "source": "user", "group": None}
    assert asyncio.run(_one_turn(stack, gina))["type"] == "stream_end"
    with stack.client(gina) as http:
        quota = http.get("/api/quota").json()
    assert quota["turns"] == {"used": 1, "limit": 1}
    refused = asyncio.run(_one_turn(stack, gina))
    assert refused["type"] == "error" and refused["code"] == "rate_limited"
    assert "quota of 1 messages" in str(refused["message"])
    with admin.http() as http:
        hits = http.get("/api/admin/audit", params={"kind": "quota.hit", "user": uid}).json()
    assert [e["detail"]["quota"] for e in hits["entries"]] == ["turns"]


def test_the_audit_log_records_admin_actions_and_exports_json_lines(
    stack: Stack, admin: Admin
) -> None:
    name = unique("hank")
    hank = stack.signup(name)
    uid = user_id(stack, hank)
    with admin.http() as http:
        http.patch(f"/api/admin/users/{uid}", json={"disabled": True})
        page = http.get("/api/admin/audit", params={"category": "admin", "user": name}).json()
        assert [e["kind"] for e in page["entries"]][:1] == ["user.disabled"]
        login(stack, name)  # a disabled account's sign-in: a security event
        security = http.get("/api/admin/audit", params={"kind": "signin."}).json()
        assert any(e["kind"] == "signin.disabled_account" for e in security["entries"])
        export = http.get("/api/admin/audit/export")
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert any(e["kind"] == "user.disabled" and e["target"]["id"] == uid for e in lines)
    assert PASSWORD not in export.text


def test_usage_chart_counts_every_users_turns_per_model(stack: Stack, admin: Admin) -> None:
    with admin.http() as http:
        before = http.get("/api/admin/usage", params={"days": 30}).json()["days"]
    ivy = stack.signup(unique("ivy"))
    asyncio.run(_one_turn(stack, ivy))

    def turns(days: list[dict[str, dict[str, dict[str, int]]]]) -> int:
        return sum(m["turns"] for d in days for m in d["models"].values())

    # The day's totals are added just after the reply is stored: wait for them.
    def counted() -> bool:
        with admin.http() as http:
            after = http.get("/api/admin/usage", params={"days": 30}).json()["days"]
        assert len(after) == 30
        return turns(after) == turns(before) + 1

    eventually(counted)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never came true"
        time.sleep(0.05)


def test_a_burst_of_wrong_passwords_and_the_lockout_are_audited_once_each(
    stack: Stack, admin: Admin
) -> None:
    name = unique("kim")
    stack.signup(name)
    # The 5th failure is a burst (the free attempts are used up); the 6th
    # locks the account (the first lock: a second).
    codes = [login(stack, name, "not my password").status_code for _ in range(6)]
    assert codes == [401] * 6
    with admin.http() as http:
        entries = http.get("/api/admin/audit", params={"kind": "signin.", "user": name}).json()
    kinds = [(e["kind"], e["detail"]["failures"]) for e in entries["entries"]]
    assert kinds == [("signin.lockout", 6), ("signin.failures", 5)]
    assert all(e["detail"]["scope"] == "account" for e in entries["entries"])
    assert "not my password" not in json.dumps(entries)
