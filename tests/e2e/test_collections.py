"""Knowledge collections end to end: real gateway, turn worker and ingestion
worker processes on real Redis, and an upstream of the tests' own that
records each prompt.

A fact that occurs only in a collection's file reaches the prompt of a
conversation that attaches the collection, and not of one that does not;
another user can neither see, fill, attach nor retrieve from it; deleting
the collection (or its owner's account) leaves none of its keys behind."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from shared.keys import Keys
from shared.redis_client import make_redis
from tests.e2e.conftest import unique
from tests.e2e.test_documents import prompt_of, wait_ready
from tests.support.fake_openai import FakeOpenAI
from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket
from tidechat.local_redis import free_port

pytestmark = pytest.mark.e2e

UPSTREAM_PORT = free_port()
PREFIX = f"{unique('coll')}:"
KEYS = Keys(PREFIX)

MODELS = f"""
[[models]]
id = "remote"
backend = "hf"
base_url = "http://127.0.0.1:{UPSTREAM_PORT}/v1"
model = "some-org/some-model"
context_window = 2048
max_tokens = 100
"""


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"TIDECHAT_KEY_PREFIX": PREFIX}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("coll"), models=MODELS, workers=1, env=env
    ) as s:
        s.start_ingest()
        yield s


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(port=UPSTREAM_PORT) as server:
        yield server


def upload_into(client: httpx.Client, colid: str, name: str, text: str) -> httpx.Response:
    return client.post(
        f"/api/files?collection={colid}", files={"file": (name, text.encode(), "text/plain")}
    )


async def ask(sock: ChatSocket, cid: str, question: str) -> dict[str, Any]:
    await sock.send({"type": "message", "conversation_id": cid, "content": question})
    sent = await sock.wait_for(
        lambda f: (
            f.get("type") == "user_message"
            and f.get("conversation_id") == cid
            and f["message"]["content"] == question
        ),
        30,
    )
    return await sock.wait_for(
        lambda f: (
            f.get("type") == "stream_end" and f["message"]["parent_id"] == sent["message"]["id"]
        ),
        120,
    )


async def chunk_keys(stack: Stack, fid: str) -> list[str]:
    redis = make_redis(stack.redis_url)
    try:
        return [str(k) async for k in redis.scan_iter(match=f"{PREFIX}chunk:{{{fid}}}:*")]
    finally:
        await redis.aclose()


async def attached_hash(stack: Stack, uid: str) -> dict[str, str]:
    redis = make_redis(stack.redis_url)
    try:
        return dict(await redis.hgetall(KEYS.attached_collections(uid)))
    finally:
        await redis.aclose()


async def user_keys(stack: Stack, uid: str) -> list[str]:
    redis = make_redis(stack.redis_url)
    try:
        return [str(k) async for k in redis.scan_iter(match=f"{PREFIX}user:{{{uid}}}:*coll*")] + [
            str(k) async for k in redis.scan_iter(match=f"{PREFIX}user:{{{uid}}}:attached")
        ]
    finally:
        await redis.aclose()


async def test_a_collection_reaches_the_conversations_that_attach_it_and_only_its_owner(
    stack: Stack, upstream: FakeOpenAI
) -> None:
    admin_token = stack.signup(unique("admin"))  # the first account: an admin
    fact = "Merrowind" + uuid.uuid4().hex[:6]
    handbook = (
        "Team handbook. Holidays are booked through the office manager. "
        f"The spare key to the server room is kept by {fact}, on the third floor."
    )
    alice_token = stack.signup(unique("alice"))
    bob_token = stack.signup(unique("bob"))
    with stack.client(alice_token) as alice, stack.client(bob_token) as bob:
        r = alice.post("/api/collections", json={"name": "Handbook"})
        assert r.status_code == 201, r.text
        colid = r.json()["id"]
        up = upload_into(alice, colid, "handbook.txt", handbook)
        assert up.status_code == 201, up.text
        assert up.json()["collection"] == colid
        await wait_ready(alice, up.json()["id"])
        listed = alice.get("/api/collections").json()
        assert [(c["id"], c["name"], c["files"]) for c in listed] == [(colid, "Handbook", 1)]
        assert alice.patch(f"/api/collections/{colid}", json={"name": "Team"}).json()["name"] == (
            "Team"
        )
        files = alice.get(f"/api/collections/{colid}/files").json()
        assert [(f["name"], f["status"]) for f in files] == [("handbook.txt", "ready")]

        with_it = alice.post("/api/conversations", json={"title": "with"}).json()["id"]
        without = alice.post("/api/conversations", json={"title": "without"}).json()["id"]
        put = alice.put(f"/api/conversations/{with_it}/collections/{colid}")
        assert put.status_code == 204, put.text
        attached = alice.get(f"/api/conversations/{with_it}/collections").json()
        assert [c["id"] for c in attached] == [colid]
        assert alice.get(f"/api/conversations/{without}/collections").json() == []

        # Bob: Alice's collection is not there for him, by any route.
        assert bob.get("/api/collections").json() == []
        assert bob.get(f"/api/collections/{colid}").status_code == 404
        assert bob.get(f"/api/collections/{colid}/files").status_code == 404
        assert bob.patch(f"/api/collections/{colid}", json={"name": "x"}).status_code == 404
        assert bob.delete(f"/api/collections/{colid}").status_code == 404
        assert upload_into(bob, colid, "mine.txt", "hello").status_code == 404
        assert bob.get(f"/api/conversations/{with_it}/collections").status_code == 404
        assert bob.put(f"/api/conversations/{with_it}/collections/{colid}").status_code == 404
        bobs = bob.post("/api/conversations", json={"title": "bob's"}).json()["id"]
        assert bob.put(f"/api/conversations/{bobs}/collections/{colid}").status_code == 404
        # Nor can Alice attach her collection to Bob's conversation.
        assert alice.put(f"/api/conversations/{bobs}/collections/{colid}").status_code == 404

        question = "Who keeps the spare key to the server room?"
        sock = await ChatSocket.connect(stack.ws_url, alice_token)
        end = await ask(sock, with_it, question)
        assert fact in prompt_of(upstream) and "handbook.txt" in prompt_of(upstream)
        assert any(fact in c["text"] for c in end["message"]["citations"])
        await ask(sock, without, question)
        assert fact not in prompt_of(upstream)
        assert question in prompt_of(upstream)
        await sock.close()

        sock = await ChatSocket.connect(stack.ws_url, bob_token)
        await ask(sock, bobs, question)
        assert fact not in prompt_of(upstream)
        await sock.close()

        # A deleted conversation attaches nothing any more.
        alice_id = alice.get("/api/auth/me").json()["id"]
        assert alice.put(f"/api/conversations/{without}/collections/{colid}").status_code == 204
        assert without in await attached_hash(stack, alice_id)
        assert alice.delete(f"/api/conversations/{without}").status_code == 204
        assert set(await attached_hash(stack, alice_id)) == {with_it}

        # Deleting the collection takes its files' bytes, chunks and vectors,
        # and detaches it.
        fid = up.json()["id"]
        assert await chunk_keys(stack, fid)
        assert alice.delete(f"/api/collections/{colid}").status_code == 204
        assert alice.get(f"/api/files/{fid}").status_code == 404
        assert await chunk_keys(stack, fid) == []
        assert alice.get("/api/collections").json() == []
        assert alice.get(f"/api/conversations/{with_it}/collections").json() == []
        assert await user_keys(stack, alice_id) == []

        # Deleting an account deletes its collections.
        other = bob.post("/api/collections", json={"name": "Bob's notes"}).json()["id"]
        assert upload_into(bob, other, "notes.txt", "Bob's own notes.").status_code == 201
        assert bob.put(f"/api/conversations/{bobs}/collections/{other}").status_code == 204
        bob_id = bob.get("/api/auth/me").json()["id"]
        assert await user_keys(stack, bob_id)
    with stack.client(admin_token) as admin:
        assert admin.delete(f"/api/admin/users/{bob_id}").status_code in (200, 204)
    assert await user_keys(stack, bob_id) == []
