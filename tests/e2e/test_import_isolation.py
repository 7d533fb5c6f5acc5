"""An import costs the importer, not everyone (issue 18, finding 1: a
20,000-deep chain took 31.6 s and another user's ``GET /api/auth/me`` took
31.3 s with it: the tree check was quadratic, on the event loop)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from gateway.config import GatewaySettings
from tests.e2e.conftest import unique
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DEFAULTS = GatewaySettings()


def chain(count: int, content_chars: int) -> dict[str, Any]:
    """An export whose messages form one branch ``count`` deep."""
    messages = {}
    parent = None
    for i in range(count):
        mid = f"m{i:06d}"
        messages[mid] = {
            "id": mid,
            "parent_id": parent,
            "role": "user" if i % 2 == 0 else "assistant",
            "content": "x" * content_chars,
            "created_at": 1_700_000_000 + i,
        }
        parent = mid
    return {"format": "tidechat.conversation.v1", "title": "deep", "messages": messages}


def worst_legal() -> bytes:
    """As deep, as many messages and as many bytes as the default limits allow."""
    depth = DEFAULTS.import_max_depth
    skeleton = chain(depth, 0)
    room = DEFAULTS.import_max_bytes - len(json.dumps(skeleton)) - 1024
    return json.dumps(chain(depth, room // depth)).encode()


async def test_a_bystanders_requests_stay_fast_while_the_worst_legal_import_runs(
    stack: Stack,
) -> None:
    body = worst_legal()
    assert len(body) <= DEFAULTS.import_max_bytes
    importer = stack.signup(unique("importer"))
    bystander = stack.signup(unique("bystander"))
    headers = {"content-type": "application/json", "Authorization": f"Bearer {importer}"}
    async with (
        httpx.AsyncClient(base_url=stack.url, timeout=120) as http,
        httpx.AsyncClient(
            base_url=stack.url, timeout=120, headers={"Authorization": f"Bearer {bystander}"}
        ) as by,
    ):
        await by.get("/api/auth/me")  # connection warm
        started = time.monotonic()
        task = asyncio.create_task(
            http.post("/api/conversations/import", content=body, headers=headers)
        )
        latencies: list[float] = []
        during: list[float] = []
        while not task.done():
            t = time.monotonic()
            assert (await by.get("/api/auth/me")).status_code == 200
            latencies.append(time.monotonic() - t)
            if not task.done():
                during.append(latencies[-1])
        response = await task
        took = time.monotonic() - started
    print(
        f"\nworst legal import ({len(body) / 1e6:.1f} MB, {DEFAULTS.import_max_depth} deep) took "
        f"{took:.2f} s; bystander /me: {len(latencies)} requests meanwhile, slowest "
        f"{max(latencies) * 1000:.0f} ms"
    )
    assert response.status_code == 201, response.text[:300]
    assert response.json()["message_count"] == DEFAULTS.import_max_depth
    # The bystander was served while the import ran, and never waited long.
    assert during, "no bystander request finished while the import was running"
    assert max(latencies) < 1.0


def test_imports_past_the_limits_are_refused_cheaply(stack: Stack) -> None:
    token = stack.signup(unique("limits"))
    with stack.client(token) as http:
        too_deep = chain(DEFAULTS.import_max_depth + 1, 0)
        r = http.post("/api/conversations/import", json=too_deep)
        assert r.status_code == 413 and "deeper" in r.json()["error"]["message"]
        too_many = chain(DEFAULTS.import_max_messages + 1, 0)
        for m in too_many["messages"].values():
            m["parent_id"] = None  # shallow, but too many
        r = http.post("/api/conversations/import", json=too_many)
        assert r.status_code == 413 and "messages" in r.json()["error"]["message"]
        r = http.post(
            "/api/conversations/import",
            content=b'{"messages": {}, "title": "' + b"x" * DEFAULTS.import_max_bytes + b'"}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        cycle = chain(3, 5)
        cycle["messages"]["m000000"]["parent_id"] = "m000002"
        r = http.post("/api/conversations/import", json=cycle)
        assert r.status_code == 400 and "cycle" in r.json()["error"]["message"]
        nested = b'{"messages": {}, "title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        r = http.post(
            "/api/conversations/import",
            content=nested,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400
        ok = http.post("/api/conversations/import", json=chain(4, 10))
        assert ok.status_code == 201 and ok.json()["message_count"] == 4


def test_an_import_with_an_infinite_timestamp_is_a_bad_request(stack: Stack) -> None:
    """JSON has no Infinity: Python's parser reads 1e999 as one, and RedisJSON
    then refused the document (a 500)."""
    token = stack.signup(unique("inf"))
    body = json.dumps(chain(2, 3)).replace('"created_at": 1700000000', '"created_at": 1e999')
    with stack.client(token) as http:
        r = http.post(
            "/api/conversations/import", content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, r.text
        r = http.post(
            "/api/conversations/import",
            content=body.replace("1e999", "1").replace('"title": "deep"', '"created_at": 1e999'),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400, r.text
