"""The admin rows of the authorization matrix (``test_authz_matrix.py``):
every ``/api/admin/...`` route x {an admin, an ordinary user, anonymous, a
disabled user}. The admin acts on accounts and groups made for the row; the
others aim at the admin's own account (to demote, disable, delete it...) and
must be refused without changing a thing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

ADMIN_PERSONAS = ("admin", "user", "anonymous", "disabled")


class AdminWorld(Protocol):
    alice: str  # the admin's token
    alice_id: str

    def http(self, token: str | None) -> httpx.Client: ...


@dataclass(frozen=True)
class AdminCall:
    method: str
    path: str
    json: Any = None


@dataclass(frozen=True)
class AdminEntry:
    build: Callable[[AdminWorld, str], AdminCall]
    #: What the admin gets; everyone else: 403 (a user), 401 (no or a dead sign-in).
    admin: int

    def expect(self, persona: str) -> int:
        return {"admin": self.admin, "user": 403}.get(persona, 401)


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def _made_user(w: AdminWorld) -> str:
    with w.http(w.alice) as http:
        r = http.post("/api/admin/users", json={"username": unique("row")})
        r.raise_for_status()
        return str(r.json()["user"]["id"])


def _made_group(w: AdminWorld) -> str:
    name = unique("g")
    with w.http(w.alice) as http:
        http.post("/api/admin/groups", json={"name": name}).raise_for_status()
    return name


def _on_user(
    method: str, suffix: str = "", body: Any = None
) -> Callable[[AdminWorld, str], AdminCall]:
    """The admin acts on a fresh account; the others on the admin's own."""

    def build(w: AdminWorld, persona: str) -> AdminCall:
        uid = _made_user(w) if persona == "admin" else w.alice_id
        return AdminCall(method, f"/api/admin/users/{uid}{suffix}", body)

    return build


def _on_group(
    method: str, suffix: str = "", body: Any = None
) -> Callable[[AdminWorld, str], AdminCall]:
    def build(w: AdminWorld, persona: str) -> AdminCall:
        tail = suffix.replace("{uid}", w.alice_id)
        return AdminCall(method, f"/api/admin/groups/{_made_group(w)}{tail}", body)

    return build


def _revoke_invite(w: AdminWorld, persona: str) -> AdminCall:
    with w.http(w.alice) as http:
        made = http.post("/api/admin/users", json={"method": "invite"}).json()
    return AdminCall("DELETE", f"/api/admin/invites/{made['invite']['id']}")


def _get(path: str) -> Callable[[AdminWorld, str], AdminCall]:
    return lambda w, p: AdminCall("GET", path)


ADMIN_HTTP: dict[tuple[str, str], AdminEntry] = {
    ("GET", "/api/admin/users"): AdminEntry(_get("/api/admin/users"), 200),
    ("POST", "/api/admin/users"): AdminEntry(
        lambda w, p: AdminCall("POST", "/api/admin/users", {"username": unique("new")}), 201
    ),
    ("PATCH", "/api/admin/users/{uid}"): AdminEntry(
        _on_user("PATCH", body={"disabled": True, "is_admin": False}), 204
    ),
    ("DELETE", "/api/admin/users/{uid}"): AdminEntry(_on_user("DELETE"), 200),
    ("POST", "/api/admin/users/{uid}/password"): AdminEntry(_on_user("POST", "/password"), 200),
    ("GET", "/api/admin/users/{uid}/quotas"): AdminEntry(_on_user("GET", "/quotas"), 200),
    ("PUT", "/api/admin/users/{uid}/quotas"): AdminEntry(
        _on_user("PUT", "/quotas", {"turns_day": 0}), 200
    ),
    ("GET", "/api/admin/invites"): AdminEntry(_get("/api/admin/invites"), 200),
    ("DELETE", "/api/admin/invites/{invite_id}"): AdminEntry(_revoke_invite, 204),
    ("GET", "/api/admin/settings"): AdminEntry(_get("/api/admin/settings"), 200),
    ("PUT", "/api/admin/settings"): AdminEntry(
        lambda w, p: AdminCall("PUT", "/api/admin/settings", {"signup_mode": "open"}), 200
    ),
    ("GET", "/api/admin/groups"): AdminEntry(_get("/api/admin/groups"), 200),
    ("POST", "/api/admin/groups"): AdminEntry(
        lambda w, p: AdminCall("POST", "/api/admin/groups", {"name": unique("g")}), 201
    ),
    ("PATCH", "/api/admin/groups/{name}"): AdminEntry(
        _on_group("PATCH", body={"turns_day": 5}), 200
    ),
    ("DELETE", "/api/admin/groups/{name}"): AdminEntry(_on_group("DELETE"), 204),
    ("PUT", "/api/admin/groups/{name}/members/{uid}"): AdminEntry(
        _on_group("PUT", "/members/{uid}"), 204
    ),
    ("DELETE", "/api/admin/groups/{name}/members/{uid}"): AdminEntry(
        _on_group("DELETE", "/members/{uid}"), 204
    ),
    ("GET", "/api/admin/models"): AdminEntry(_get("/api/admin/models"), 200),
    ("PUT", "/api/admin/models/{model_id}/access"): AdminEntry(
        lambda w, p: AdminCall("PUT", "/api/admin/models/slow/access", {"groups": None}), 204
    ),
    ("GET", "/api/admin/usage"): AdminEntry(_get("/api/admin/usage"), 200),
    ("GET", "/api/admin/audit"): AdminEntry(_get("/api/admin/audit"), 200),
    ("GET", "/api/admin/audit/export"): AdminEntry(_get("/api/admin/audit/export"), 200),
    ("GET", "/api/admin/moderation"): AdminEntry(_get("/api/admin/moderation"), 200),
    ("GET", "/api/admin/retention"): AdminEntry(_get("/api/admin/retention"), 200),
    # No policy is on in the matrix: the admin's request is refused for that
    # (400), everyone else's before it is looked at.
    ("POST", "/api/admin/retention/run"): AdminEntry(
        lambda w, p: AdminCall("POST", "/api/admin/retention/run"), 400
    ),
    ("GET", "/api/admin/jobs/{job_id}"): AdminEntry(_get("/api/admin/jobs/no-such-job"), 404),
}
