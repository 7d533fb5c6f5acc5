"""Retention through the admin API and a real worker: the console's preview
counts what a group's policy would delete before it is on; a sweep, run as a
job by a worker, deletes exactly the members' conversations untouched past
the limit, through the conversation store, and is audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared.conversation import Conversation, new_id
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.store import ConversationStore
from tests.e2e.conftest import unique
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

DAY = 86_400


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"TIDECHAT_KEY_PREFIX": f"{unique('ret')}:"}
    with running_stack(redis_url, tmp_path_factory.mktemp("ret"), env=env, workers=1) as s:
        yield s


async def _conversations(stack: Stack, uid: str, ages_days: list[int]) -> list[str]:
    """Conversations last touched that many days ago (written as an import is)."""
    client = make_redis(stack.redis_url)
    store = ConversationStore(client, Keys(stack.env["TIDECHAT_KEY_PREFIX"]))
    ids = []
    for age in ages_days:
        ts = time.time() - age * DAY
        conv = Conversation(
            id=new_id(), owner=uid, title=f"{age} days old", created_at=ts, updated_at=ts
        )
        await store.bulk.write(conv)
        ids.append(conv.id)
    await client.aclose()
    return ids


def _me(stack: Stack, token: str) -> str:
    with stack.client(token) as http:
        return str(http.get("/api/auth/me").json()["id"])


def _titles(stack: Stack, token: str) -> set[str]:
    with stack.client(token) as http:
        return {c["title"] for c in http.get("/api/conversations").json()["items"]}


def test_preview_then_a_sweep_by_a_worker_deletes_only_whats_past_the_policy(
    stack: Stack,
) -> None:
    admin = stack.signup(unique("root"))
    alice, bob = stack.signup(unique("alice")), stack.signup(unique("bob"))
    alice_id, bob_id = _me(stack, alice), _me(stack, bob)
    asyncio.run(_conversations(stack, alice_id, [40, 45, 400, 3, 0]))
    asyncio.run(_conversations(stack, bob_id, [40, 400]))  # in no group: kept
    with stack.client(admin) as http:
        http.post("/api/admin/groups", json={"name": "short"}).raise_for_status()
        http.put(f"/api/admin/groups/short/members/{alice_id}").raise_for_status()
        http.patch("/api/admin/groups/short", json={"retention_days": 30}).raise_for_status()
        preview: dict[str, Any] = http.get("/api/admin/retention").json()
        assert preview["enabled"] is False and preview["total"] == 0
        assert preview["groups"] == [
            {"name": "short", "days": 30, "on": False, "users": 1, "conversations": 3}
        ]
        refused = http.post("/api/admin/retention/run")
        assert refused.status_code == 400 and "no group" in refused.json()["error"]["message"]
        http.patch("/api/admin/groups/short", json={"retention_on": True}).raise_for_status()
        assert http.get("/api/admin/retention").json()["total"] == 3
        job = http.post("/api/admin/retention/run").json()["job"]
        deadline = time.monotonic() + 30
        while (record := http.get(f"/api/admin/jobs/{job}").json())["status"] != "done":
            assert time.monotonic() < deadline, record
            time.sleep(0.1)
        assert record["deleted"] == 3
        after = http.get("/api/admin/retention").json()
        assert after["total"] == 0 and after["last"]["deleted"] == 3
        swept = http.get("/api/admin/audit", params={"kind": "retention."}).json()["entries"]
    assert [e["kind"] for e in swept] == ["retention.swept", "retention.run_requested"]
    assert _titles(stack, alice) == {"3 days old", "0 days old"}
    assert _titles(stack, bob) == {"40 days old", "400 days old"}
