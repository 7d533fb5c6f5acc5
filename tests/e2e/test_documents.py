"""Chat with documents end to end: real gateway, turn worker and ingestion
worker processes on real Redis, the bundled embedder, and an OpenAI-compatible
upstream of the tests' own that records the prompt it was given.

A PDF and a DOCX made here state facts that occur nowhere else; the
recorded prompt must hold the passage, the stored reply its citation, and
another user must never retrieve them."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from shared.keys import Keys
from shared.redis_client import make_redis
from tests.e2e.conftest import unique
from tests.support.documents import make_docx, make_pdf
from tests.support.fake_openai import FakeOpenAI
from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket
from tidechat.local_redis import free_port

pytestmark = pytest.mark.e2e

UPSTREAM_PORT = free_port()
#: Keys of its own: another module's chunk index (built for another
#: embedder's dimension) must not be the one this stack's workers find.
PREFIX = f"docs{uuid.uuid4().hex[:6]}:"
KEYS = Keys(PREFIX)

# A small context, so the long PDF cannot go in whole: its passages are
# found by vector search.
MODELS = f"""
[[models]]
id = "remote"
backend = "hf"
base_url = "http://127.0.0.1:{UPSTREAM_PORT}/v1"
model = "some-org/some-model"
context_window = 2048
max_tokens = 100

[[models]]
id = "eyes"
backend = "hf"
base_url = "http://127.0.0.1:{UPSTREAM_PORT}/v1"
model = "some-org/some-vision-model"
vision = true
"""

#: A PNG as far as tidechat looks (the upstream does not decode it).
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

FILLER = [
    "The committee reviewed the annual budget for office supplies and printing.",
    "Travel expenses rose slightly because of the autumn conference in the capital.",
    "Minutes of the meeting were circulated to all members the following week.",
    "The new printer on the second floor needs a maintenance contract next year.",
    "Several members asked for clearer guidance on reimbursing train tickets.",
]


def filler_page(i: int) -> list[str]:
    return [FILLER[(i + j) % len(FILLER)] for j in range(12)]


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"TIDECHAT_MAX_FILE_BYTES": "300000", "TIDECHAT_KEY_PREFIX": PREFIX}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("docs"), models=MODELS, workers=1, env=env
    ) as s:
        s.start_ingest()
        yield s


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(port=UPSTREAM_PORT) as server:
        yield server


def upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post("/api/files", files={"file": (name, data, "application/octet-stream")})


async def wait_ready(client: httpx.Client, file_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        info = (await asyncio.to_thread(client.get, f"/api/files/{file_id}")).json()
        seen.add(info["status"])
        if info["status"] in ("ready", "failed"):
            assert info["status"] == "ready", info
            return dict(info)
        await asyncio.sleep(0.2)
    raise AssertionError(f"file {file_id} not ready; statuses seen {seen}")


def prompt_of(server: FakeOpenAI, index: int = -1) -> str:
    messages = server.requests[index].body["messages"]
    return "\n".join(str(m["content"]) for m in messages)


async def test_documents_are_retrieved_cited_and_kept_to_their_owner(
    stack: Stack, upstream: FakeOpenAI
) -> None:
    cat = "Quillon" + uuid.uuid4().hex[:6]
    code = "ZX-" + uuid.uuid4().hex[:6].upper()
    pages = [filler_page(i) for i in range(12)]
    pages[6] = [f"The harbour master's cat is named {cat}, and it sleeps on the ferry."]
    pdf = make_pdf(pages)
    docx = make_docx([FILLER[0], f"The launch code for the lighthouse generator is {code}."])

    alice_token = stack.signup(unique("alice"))
    with stack.client(alice_token) as alice:
        r_pdf, r_docx = upload(alice, "harbour.pdf", pdf), upload(alice, "notes.docx", docx)
        assert r_pdf.status_code == 201, r_pdf.text
        assert r_docx.status_code == 201, r_docx.text
        assert r_pdf.json()["kind"] == "pdf" and r_docx.json()["kind"] == "docx"
        pdf_info = await wait_ready(alice, r_pdf.json()["id"])
        docx_info = await wait_ready(alice, r_docx.json()["id"])
        assert pdf_info["pages"] == 12 and pdf_info["chunks_done"] == pdf_info["chunks_total"]

        sock = await ChatSocket.connect(stack.ws_url, alice_token)
        await sock.send(
            {
                "type": "message",
                "content": "What is the name of the harbour master's cat?",
                "attachments": [pdf_info["id"], docx_info["id"]],
            }
        )
        sent = await sock.wait_type("user_message", timeout=30)
        assert [a["name"] for a in sent["message"]["attachments"]] == ["harbour.pdf", "notes.docx"]
        end = await sock.wait_type("stream_end", timeout=120)
        prompt = prompt_of(upstream)
        assert cat in prompt and "harbour.pdf, page 7" in prompt
        citations = end["message"]["citations"]
        cited = next(c for c in citations if cat in c["text"])
        assert cited["file_id"] == pdf_info["id"] and cited["page"] == 7
        assert f"[{cited['n']}] harbour.pdf, page 7" in prompt
        # Vector search, not the whole file: the context is too small for it.
        assert len(citations) < pdf_info["chunks_total"]

        # A later turn in the conversation still reads the attached files.
        cid = end["conversation_id"]
        await sock.send(
            {
                "type": "message",
                "conversation_id": cid,
                "content": "What is the launch code for the lighthouse generator?",
            }
        )
        second = await sock.wait_for(
            lambda f: f.get("type") == "stream_end" and f["turn_id"] != end["turn_id"], 120
        )
        assert code in prompt_of(upstream)
        assert any(code in c["text"] for c in second["message"]["citations"])
        stored = alice.get(f"/api/conversations/{cid}").json()["messages"]
        assert stored[end["message"]["id"]]["citations"] == citations
        # The passages a reply keeps count toward its user's storage quota.
        uid = alice.get("/api/auth/me").json()["id"]
        counters = make_redis(stack.redis_url)
        try:
            stored_bytes = int(await counters.hget(KEYS.user_storage(uid), "bytes") or 0)
        finally:
            await counters.aclose()
        cited_bytes = sum(
            len(c["text"].encode()) for c in citations + second["message"]["citations"]
        )
        assert stored_bytes >= cited_bytes
        # The export lists what was attached and cited.
        md = alice.get(f"/api/conversations/{cid}/export?format=markdown").text
        assert "_Attached: harbour.pdf, notes.docx_" in md
        assert f"{cited['n']}. harbour.pdf, page 7" in md
        await sock.close()

    # Bob: cannot see or attach Alice's files, and his own never lead to hers.
    bob_token = stack.signup(unique("bob"))
    with stack.client(bob_token) as bob:
        assert bob.get(f"/api/files/{pdf_info['id']}").status_code == 404
        own = upload(bob, "mine.pdf", make_pdf([filler_page(1), filler_page(2)]))
        own_info = await wait_ready(bob, own.json()["id"])
        sock = await ChatSocket.connect(stack.ws_url, bob_token)
        await sock.send(
            {
                "type": "message",
                "content": "What is the name of the harbour master's cat?",
                "attachments": [pdf_info["id"]],
            }
        )
        refused = await sock.wait_type("error", timeout=30)
        assert refused["code"] == "not_found"
        before = len(upstream.requests)
        await sock.send(
            {
                "type": "message",
                "content": "What is the name of the harbour master's cat? The launch code?",
                "attachments": [own_info["id"]],
            }
        )
        await sock.wait_type("stream_end", timeout=120)
        assert len(upstream.requests) == before + 1
        assert cat not in prompt_of(upstream) and code not in prompt_of(upstream)
        assert "mine.pdf" in prompt_of(upstream)
        await sock.close()


async def test_uploads_are_refused_by_size_and_by_what_the_bytes_are(stack: Stack) -> None:
    with stack.client(stack.signup(unique("carol"))) as carol:
        elf = upload(carol, "invoice.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 500)
        assert elf.status_code == 415
        assert elf.json()["error"]["code"] == "unsupported_type"
        assert "PDF, DOCX" in elf.json()["error"]["message"]
        big = upload(carol, "big.txt", b"word " * 70_000)  # 350 KB, over the 300 KB set
        assert big.status_code == 413
        # A PDF named .txt is read as the PDF it is.
        pdf = upload(carol, "notes.txt", make_pdf([["Hello from a PDF"]]))
        assert pdf.status_code == 201 and pdf.json()["kind"] == "pdf"
        assert [f["id"] for f in carol.get("/api/files").json()] == [pdf.json()["id"]]


async def test_images_go_to_vision_models_only(stack: Stack, upstream: FakeOpenAI) -> None:
    token = stack.signup(unique("vera"))
    with stack.client(token) as vera:
        r = upload(vera, "chart.png", PNG)
        assert r.status_code == 201 and r.json()["status"] == "ready"
        image = r.json()["id"]
        content = vera.get(f"/api/files/{image}/content")
        assert content.content == PNG and content.headers["content-type"] == "image/png"
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.send(
        {
            "type": "message",
            "content": "What does this show?",
            "model": "remote",
            "attachments": [image],
        }
    )
    refused = await sock.wait_type("error", timeout=30)
    assert refused["code"] == "bad_request" and "cannot see images" in refused["message"]
    await sock.send(
        {
            "type": "message",
            "content": "What does this show?",
            "model": "eyes",
            "attachments": [image],
        }
    )
    await sock.wait_type("stream_end", timeout=60)
    question = upstream.requests[-1].body["messages"][-1]
    assert question["role"] == "user"
    assert question["content"][0] == {"type": "text", "text": "What does this show?"}
    url = question["content"][1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()
    await sock.close()
