"""What happens to a question's files when it is edited, and when its
conversation is exported and imported again: real gateway, turn worker and
ingestion worker processes on real Redis.

- An edit keeps the original's files unless the edit names others (``[]``:
  none), and the new version's reply draws on them.
- An import keeps every message's text and marks the attachments that are
  not the importer's files here as ``missing`` (the client shows a missing
  chip): deleted since the export, or another user's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import unique
from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e

MODELS = """
[[models]]
id = "scripted"
backend = "scripted"
reply_tokens = 8
tokens_per_second = 0
"""


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"TIDECHAT_KEY_PREFIX": f"{unique('edits')}:", "TIDECHAT_EMBEDDER": "hash"}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("edits"), models=MODELS, workers=1, env=env
    ) as s:
        s.start_ingest()
        yield s


def upload_ready(client: httpx.Client, name: str, text: str) -> str:
    r = client.post("/api/files", files={"file": (name, text.encode(), "text/plain")})
    assert r.status_code == 201, r.text
    fid = str(r.json()["id"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(f"/api/files/{fid}").json()["status"]
        if status in ("ready", "failed"):
            assert status == "ready"
            return fid
        time.sleep(0.2)
    raise AssertionError(f"{name} never got ready")


async def turn(
    sock: ChatSocket, frame: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Send a frame; the stored question it made, the finished reply, the conversation."""
    marker = uuid.uuid4().hex
    await sock.send({**frame, "client_id": marker})
    sent = await sock.wait_for(
        lambda f: f.get("type") == "user_message" and f.get("client_id") == marker, 30
    )
    end = await sock.wait_for(
        lambda f: (
            f.get("type") == "stream_end" and f["message"]["parent_id"] == sent["message"]["id"]
        ),
        60,
    )
    return sent["message"], end["message"], str(sent["conversation_id"])


async def test_an_edit_keeps_the_questions_files_unless_it_names_others(stack: Stack) -> None:
    token = stack.signup(unique("eda"))
    with stack.client(token) as http:
        fid = upload_ready(http, "boat.txt", "The harbour's rescue boat is called Sparrowhawk.")
    sock = await ChatSocket.connect(stack.ws_url, token)
    question, reply, cid = await turn(
        sock, {"type": "message", "content": "What is the boat called?", "attachments": [fid]}
    )
    assert [a["file_id"] for a in question["attachments"]] == [fid]
    assert reply["citations"], "the original question's reply draws on the file"

    edit = {"type": "edit", "conversation_id": cid, "message_id": question["id"]}
    edited, edited_reply, _ = await turn(sock, {**edit, "content": "And its name, again?"})
    assert [a["file_id"] for a in edited["attachments"]] == [fid]
    assert edited_reply["citations"] and "Sparrowhawk" in edited_reply["citations"][0]["text"]

    bare, bare_reply, _ = await turn(sock, {**edit, "content": "Without it?", "attachments": []})
    assert bare["attachments"] == [] and bare_reply["citations"] == []
    await sock.close()


async def test_an_import_marks_the_files_that_are_not_here_as_missing(stack: Stack) -> None:
    token = stack.signup(unique("imp"))
    with stack.client(token) as http:
        kept = upload_ready(http, "kept.txt", "This file stays.")
        gone = upload_ready(http, "gone.txt", "This file is deleted after the export.")
        sock = await ChatSocket.connect(stack.ws_url, token)
        question, _, cid = await turn(
            sock,
            {"type": "message", "content": "Read both, please.", "attachments": [kept, gone]},
        )
        await sock.close()
        exported = http.get(f"/api/conversations/{cid}/export?format=json").json()
        assert http.delete(f"/api/files/{gone}").status_code == 204
        assert http.delete(f"/api/conversations/{cid}").status_code == 204

        r = http.post("/api/conversations/import", json=exported)
        assert r.status_code == 201, r.text
        copy = r.json()
        stored = http.get(f"/api/conversations/{copy['id']}").json()
        for conv in (copy, stored):
            message = conv["messages"][question["id"]]
            assert message["content"] == "Read both, please."
            marks = {a["name"]: a.get("missing", False) for a in message["attachments"]}
            assert marks == {"kept.txt": False, "gone.txt": True}

    # Another user importing the same export has neither file.
    with stack.client(stack.signup(unique("imp2"))) as other:
        copy = other.post("/api/conversations/import", json=exported).json()
        others = [a["missing"] for a in copy["messages"][question["id"]]["attachments"]]
        assert others == [True, True]
