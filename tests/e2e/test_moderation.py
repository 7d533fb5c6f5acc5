"""The moderation hook through a real gateway and worker: a message a rule or
the classifier (a local server speaking the Inference API's
text-classification format) blocks is stored as blocked with the admin's
reason and never answered; a reply a rule blocks is stored with its text
withheld; both are listed for the admin, and audited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import unique
from tests.support.classifier import Classifier, classifier_server
from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e

NO_CONTRABAND = "We don't discuss contraband here."
WITHHELD = "That reply was withheld by the content policy."
CIVIL = "Please keep it civil."


def models(classifier_url: str) -> str:
    return f"""
[[models]]
id = "scripted"
backend = "scripted"
reply_tokens = 16
tokens_per_second = 0

[moderation]
reason = "Not on this server."

[[moderation.rules]]
words = ["contraband"]
reason = "{NO_CONTRABAND}"
applies_to = ["input"]

[[moderation.rules]]
pattern = "SECRET-[0-9]+"
reason = "{WITHHELD}"
applies_to = ["output"]

[moderation.classifier]
url = "{classifier_url}/classify"
labels = ["toxic"]
threshold = 0.8
reason = "{CIVIL}"
applies_to = ["input"]
"""


@pytest.fixture(scope="module")
def classifier() -> Iterator[Classifier]:
    with classifier_server() as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, classifier: Classifier
) -> Iterator[Stack]:
    env = {"TIDECHAT_KEY_PREFIX": f"{unique('mod')}:"}
    with running_stack(
        redis_url,
        tmp_path_factory.mktemp("moderation"),
        models=models(classifier.url),
        env=env,
        workers=1,
    ) as s:
        yield s


@pytest.fixture(scope="module")
def admin(stack: Stack) -> str:
    return stack.signup(unique("root"))


async def send(stack: Stack, token: str, content: str) -> list[dict[str, Any]]:
    """The frames a message gets, up to its reply's end or its error."""
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.wait_type("hello")
    await sock.send({"type": "message", "content": content, "client_id": unique("c")})
    await sock.wait_for(lambda f: f["type"] in ("stream_end", "error"), timeout=30)
    await sock.close()
    return sock.frames


@pytest.mark.parametrize(
    ("content", "reason", "rule"),
    [
        ("where can I buy CONTRABAND?", NO_CONTRABAND, "rule 1"),
        ("you are awful", CIVIL, "classifier: toxic 0.97"),
    ],
)
def test_a_blocked_message_is_stored_as_blocked_and_never_answered(
    stack: Stack, admin: str, content: str, reason: str, rule: str
) -> None:
    user = stack.signup(unique("u"))
    frames = asyncio.run(send(stack, user, content))
    # The session's own frames (the user's feed may echo the new conversation).
    kinds = [f["type"] for f in frames if not f.get("feed_id")]
    assert kinds[:4] == ["hello", "conversation_created", "user_message", "error"], kinds
    assert not {"stream_start", "turn_started"} & {f["type"] for f in frames}
    said = next(f for f in frames if f["type"] == "user_message")
    error = next(f for f in frames if f["type"] == "error")
    assert said["message"]["blocked"] == reason and said["message"]["content"] == content
    assert error["code"] == "blocked" and error["message"] == reason
    assert said.get("turn_id") is None  # no turn was queued
    cid = said["conversation_id"]
    with stack.client(user) as http:
        conv = http.get(f"/api/conversations/{cid}").json()
    assert [m["role"] for m in conv["messages"].values()] == ["user"]
    assert next(iter(conv["messages"].values()))["blocked"] == reason
    with stack.client(admin) as http:
        items = http.get("/api/admin/moderation").json()["items"]
        audit = http.get("/api/admin/audit", params={"kind": "moderation.blocked"}).json()
    item = next(i for i in items if i["conversation_id"] == cid)
    assert item["direction"] == "input" and item["rule"] == rule and item["excerpt"] == content
    assert any(e["detail"].get("conversation_id") == cid for e in audit["entries"])
    # The admin's log names the rule, never the user's words.
    assert all(content not in str(e) for e in audit["entries"])


def test_a_blocked_reply_is_replaced_by_a_notice(stack: Stack, admin: str) -> None:
    user = stack.signup(unique("u"))
    frames = asyncio.run(send(stack, user, "please repeat SECRET-42"))
    end = next(f for f in frames if f["type"] == "stream_end")
    assert end["message"]["content"] == "" and end["message"]["blocked"] == WITHHELD
    with stack.client(user) as http:
        conv = http.get(f"/api/conversations/{end['conversation_id']}").json()
    reply = conv["messages"][end["message"]["id"]]
    assert reply["content"] == "" and reply["blocked"] == WITHHELD
    with stack.client(admin) as http:
        items = http.get("/api/admin/moderation").json()["items"]
    item = next(i for i in items if i["conversation_id"] == end["conversation_id"])
    assert item["direction"] == "output" and "SECRET-42" in item["excerpt"]


def test_an_ordinary_message_passes(stack: Stack) -> None:
    user = stack.signup(unique("u"))
    frames = asyncio.run(send(stack, user, "a kind word"))
    end = next(f for f in frames if f["type"] == "stream_end")
    assert end["message"]["content"] and not end["message"].get("blocked")


def test_a_blocked_message_over_http_ends_its_stream_with_the_reason(stack: Stack) -> None:
    user = stack.signup(unique("u"))
    with stack.client(user) as http:
        r = http.post("/api/chat", json={"content": "any contraband?"}, timeout=15)
    events = [
        line.removeprefix("event: ") for line in r.text.splitlines() if line.startswith("event: ")
    ]
    assert events == ["conversation_created", "user_message", "error"]
    assert NO_CONTRABAND in r.text
