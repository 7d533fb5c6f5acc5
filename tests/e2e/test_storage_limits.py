"""What one user stores is bounded, and a full Redis says so (issue 18,
finding 3: one 95 MB import was accepted in 3.3 s, Redis had no
``maxmemory``, and nothing limited how many conversations one account
created)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from shared import storage_usage
from shared.redis_client import make_redis
from tests.e2e.conftest import unique
from tests.support.keys import KEYS
from tests.support.stack import Stack, running_stack, scripted_models
from tests.support.ws import ChatSocket
from tidechat.local_redis import LocalRedis

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

QUOTAS = {"conversations": 3, "messages": 12, "bytes": 20_000}


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {f"TIDECHAT_QUOTA_{name.upper()}": str(v) for name, v in QUOTAS.items()}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("quota"), models=scripted_models(reply_tokens=4), env=env
    ) as s:
        yield s


async def ask(sock: ChatSocket, content: str, cid: str | None = None) -> dict[str, Any]:
    """Send a message; its stream_end, or the error that refused it."""
    client_id = unique("c")
    await sock.send(
        {"type": "message", "content": content, "conversation_id": cid, "client_id": client_id}
    )
    first = await sock.wait_for(
        lambda f: f.get("client_id") == client_id and f["type"] in ("user_message", "error")
    )
    if first["type"] == "error":
        return first
    return await sock.wait_type("stream_end", turn_id=first["turn_id"])


async def counted(
    redis: Redis, stack: Stack, token: str
) -> tuple[storage_usage.Stored, storage_usage.Stored]:
    """The user's counters, and the same figures computed from their documents."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers) as http:
        uid = (await http.get("/api/auth/me")).json()["id"]
        listed = (await http.get("/api/conversations", params={"limit": 200})).json()["items"]
        convs = [
            (await http.get(f"/api/conversations/{c['id']}/export?format=json")).json()
            for c in listed
        ]
    row = await redis.hmget(KEYS.user_storage(uid), list(storage_usage.FIELDS))
    cids = [c["id"] for c in convs]
    messages = nbytes = 0
    for conv in convs:
        messages += len(conv["messages"])
        nbytes += sum(len(m["content"].encode()) for m in conv["messages"].values())
    return storage_usage.parse(row), storage_usage.Stored(len(cids), messages, nbytes)


async def test_conversations_messages_and_bytes_are_limited_per_user(
    stack: Stack, redis_url: str
) -> None:
    token = stack.signup(unique("hoarder"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.wait_type("hello")
    redis = make_redis(redis_url)
    try:
        with stack.client(token) as http:
            # Conversations: three, then quota_exceeded on every way to make one.
            ends = [await ask(sock, f"chat {i}") for i in range(3)]
            assert all(e["type"] == "stream_end" for e in ends)
            refused = await ask(sock, "a fourth chat")
            assert refused["code"] == "quota_exceeded"
            assert "conversations" in refused["message"]
            r = http.post("/api/conversations", json={})
            assert r.status_code == 403 and r.json()["error"]["code"] == "quota_exceeded"
            export = http.get(f"/api/conversations/{ends[0]['conversation_id']}/export?format=json")
            r = http.post("/api/conversations/import", json=export.json())
            assert r.status_code == 403 and r.json()["error"]["code"] == "quota_exceeded"
            # Deleting one gives its room back.
            assert (
                http.delete(f"/api/conversations/{ends[2]['conversation_id']}").status_code == 204
            )
            assert http.post("/api/conversations", json={}).status_code == 201
            # Messages: 2 conversations x 2 + ... until 12; each turn stores two.
            cid = ends[0]["conversation_id"]
            results = [await ask(sock, f"more {i}", cid) for i in range(5)]
            assert results[-1]["type"] == "error" and results[-1]["code"] == "quota_exceeded"
            assert "messages" in results[-1]["message"]
            # The counters match what the documents hold.
            held, actual = await counted(redis, stack, token)
            assert (held.conversations, held.messages, held.bytes) == (
                actual.conversations,
                actual.messages,
                actual.bytes,
            )
        # Someone else is not affected.
        other = await ChatSocket.connect(stack.ws_url, stack.signup(unique("other")))
        await other.wait_type("hello")
        assert (await ask(other, "hello there"))["type"] == "stream_end"
        # Bytes: a user whose text fills their quota.
        big = await ChatSocket.connect(stack.ws_url, stack.signup(unique("big")))
        await big.wait_type("hello")
        assert (await ask(big, "x" * 15_000))["type"] == "stream_end"
        refused = await ask(big, "y" * 6_000)
        assert refused["code"] == "quota_exceeded" and "MB of text" in refused["message"]
        await asyncio.gather(sock.close(), other.close(), big.close())
    finally:
        await redis.aclose()


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "redis", persistence=False, maxmemory="40mb")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def fill(redis: Redis) -> None:
    """Junk until Redis refuses writes, and keep it refusing them.

    A refused 1 MB SET counted its own argument against the limit; once it
    is refused, Redis may still be a little below ``maxmemory``. Lowering
    the limit to what Redis holds leaves no such slack, as when real data
    reaches it."""
    n = 0
    while True:
        try:
            await redis.set(f"junk:{n}", "j" * 1_000_000)
        except OutOfMemoryError:
            break
        n += 1
    used = int((await redis.info("memory"))["used_memory"])
    await redis.config_set("maxmemory", used - 1_000_000)


async def test_a_full_redis_refuses_writes_with_storage_full_and_reads_go_on(
    small_redis: LocalRedis, tmp_path: Path
) -> None:
    with running_stack(small_redis.url, tmp_path / "stack", workers=1) as stack:
        token = stack.signup(unique("full"))
        sock = await ChatSocket.connect(stack.ws_url, token)
        await sock.wait_type("hello")
        first = await ask(sock, "before it fills up")
        assert first["type"] == "stream_end"
        redis = make_redis(small_redis.url)
        try:
            config = await redis.config_get("maxmemory-policy")
            assert config["maxmemory-policy"] == "noeviction"
            await fill(redis)
            refused = await ask(sock, "after it filled up")
            assert refused["code"] == "storage_full"
            assert "storage is full" in refused["message"]
            with stack.client(token) as http:
                r = http.post("/api/conversations", json={})
                assert r.status_code == 507 and r.json()["error"]["code"] == "storage_full"
                # Reading still works: what was stored is all there.
                assert http.get(f"/api/conversations/{first['conversation_id']}").status_code == 200
            # Room again: writes go on, no restart.
            await redis.delete(*[k async for k in redis.scan_iter("junk:*")])
            await redis.config_set("maxmemory", "40mb")
            assert (await ask(sock, "after the room was made"))["type"] == "stream_end"
        finally:
            await redis.aclose()
        await sock.close()
        log = stack.gateways[0].log.read_text(errors="replace")
        assert "Traceback" not in log
