"""The hf backend end to end: gateway and worker processes, the worker talking
real HTTP to an OpenAI-compatible server of the tests' own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.e2e.conftest import unique
from tests.support.fake_openai import FakeOpenAI, Refuse
from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket
from tidechat.local_redis import free_port

pytestmark = pytest.mark.e2e

UPSTREAM_PORT = free_port()

MODELS = f"""
[[models]]
id = "remote"
backend = "hf"
base_url = "http://127.0.0.1:{UPSTREAM_PORT}/v1"
model = "some-org/some-model"
token_env = "REMOTE_API_KEY"
max_tokens = 200
"""


@pytest.fixture(scope="module")
def hf_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"REMOTE_API_KEY": "sk-test-key", "TIDECHAT_RETRY_BASE_SECONDS": "0.05"}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("hf"), models=MODELS, workers=1, env=env
    ) as s:
        yield s


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(port=UPSTREAM_PORT) as server:
        yield server


async def test_a_reply_streams_from_the_upstream_with_its_usage(
    hf_stack: Stack, upstream: FakeOpenAI
) -> None:
    sock = await ChatSocket.connect(hf_stack.ws_url, hf_stack.signup(unique("hf")))
    await sock.send({"type": "message", "content": "What is a fjord?"})
    end = await sock.wait_type("stream_end")
    request = upstream.requests[0]
    assert request.body["model"] == "some-org/some-model"
    assert request.body["stream"] is True
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.body["messages"][-1] == {"role": "user", "content": "What is a fjord?"}
    assert end["message"]["content"] == request.text
    assert sock.text_of(end["turn_id"]) == request.text
    assert end["message"]["usage"]["estimated"] is False
    assert end["message"]["usage"]["completion_tokens"] == len(request.sent)
    # then the model is asked for a title (a short call of its own)
    title = await sock.wait_type("title")
    assert title["title"]
    assert upstream.requests[1].body["max_tokens"] <= 32
    await sock.close()


async def test_a_503_is_retried_and_the_turn_completes(
    hf_stack: Stack, upstream: FakeOpenAI
) -> None:
    upstream.enqueue(Refuse(503), Refuse(429, retry_after="0"))
    sock = await ChatSocket.connect(hf_stack.ws_url, hf_stack.signup(unique("hf")))
    await sock.send({"type": "message", "content": "try again please"})
    end = await sock.wait_type("stream_end")
    assert end["message"]["finish_reason"] == "stop"
    assert len(upstream.requests) == 3
    assert not any(f["type"] == "error" for f in sock.frames)
    await sock.wait_type("title")
    await sock.close()


async def test_a_400_is_a_backend_error_and_not_retried(
    hf_stack: Stack, upstream: FakeOpenAI
) -> None:
    sock = await ChatSocket.connect(hf_stack.ws_url, hf_stack.signup(unique("hf")))
    await sock.send({"type": "message", "content": "bad one [[400]]"})
    err = await sock.wait_type("error")
    assert err["code"] == "backend_error"
    assert "sk-test-key" not in err["message"]
    await sock.wait_type("stream_end", turn_id=err["turn_id"])
    assert len(upstream.requests) == 1, [r.body for r in upstream.requests]
    await sock.close()


async def test_stop_closes_the_upstream_connection(hf_stack: Stack, upstream: FakeOpenAI) -> None:
    sock = await ChatSocket.connect(hf_stack.ws_url, hf_stack.signup(unique("hf")))
    await sock.send({"type": "message", "content": "a long one [[slow]]"})
    user_msg = await sock.wait_type("user_message")
    turn_id = user_msg["turn_id"]
    await sock.wait_for(
        lambda f: f["type"] == "stream_chunk" and len(sock.streamed_text_of(turn_id).split()) >= 5
    )
    request = upstream.requests[0]
    asked = time.monotonic()
    await sock.send({"type": "stop", "turn_id": turn_id})
    end = await sock.wait_type("stream_end", turn_id=turn_id)
    assert end["message"]["finish_reason"] == "stopped"
    await request.disconnected.wait()
    assert request.disconnected_at is not None
    assert request.disconnected_at - asked < 0.5  # the inference server saw the request end
    assert end["message"]["content"] == request.text[: len(end["message"]["content"])]
    await sock.close()
