"""HFBackend against a real HTTP server of the tests' own (tests/support/fake_openai.py).

Nothing in huggingface_hub is patched: requests go over real sockets, so what
these tests see (bodies, headers, a closed connection) is what an inference
server would see.
"""

from __future__ import annotations

import asyncio
import socket
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest
from huggingface_hub import set_async_client_factory
from huggingface_hub.utils._http import default_async_client_factory

from shared.conversation import Usage
from shared.models_file import HFModel
from tests.support.fake_openai import (
    Cut,
    FakeOpenAI,
    Garbage,
    Hang,
    Refuse,
    Reply,
    Stall,
    StreamError,
)
from worker.backends.base import Delta, GenerationRequest
from worker.backends.hf import HFBackend
from worker.errors import (
    BackendError,
    BackendRateLimited,
    BackendTimeout,
    BackendUnavailable,
)

TOKEN = "hf_testtoken_0123456789abcdef"
HUB_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(autouse=True)
def no_proxy_or_machine_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy or a Hugging Face login on the machine must not change what is sent."""
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_OIDC_RESOURCE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def backend_for(
    server: FakeOpenAI, *, token: str | None = TOKEN, suffix: str = "", **kwargs: float
) -> HFBackend:
    spec = HFModel(
        id="test-model", backend="hf", base_url=server.base_url + suffix, model="my-model"
    )
    return HFBackend(spec, token, **kwargs)


def request(
    content: str = "Tell me about tides",
    *,
    max_tokens: int = 64,
    temperature: float = 0.7,
    top_p: float | None = None,
    stop: list[str] | None = None,
) -> GenerationRequest:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": content},
    ]
    return GenerationRequest(
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=stop or [],
    )


async def collect(backend: HFBackend, req: GenerationRequest, into: list[Delta]) -> list[Delta]:
    """Iterate like the worker does; ``into`` keeps what arrived before a failure."""
    async with aclosing(backend.stream(req)) as deltas:
        async for delta in deltas:
            into.append(delta)
    return into


def texts(deltas: list[Delta]) -> list[str]:
    return [d.text for d in deltas if d.text]


# -- a normal reply -------------------------------------------------------------


async def test_streamed_text_arrives_in_order_with_usage(server: FakeOpenAI) -> None:
    server.enqueue(Reply(tokens=12))
    deltas = await collect(backend_for(server), request(), [])

    sent = server.requests[0].sent
    assert len(sent) == 12
    assert texts(deltas) == sent  # each piece, in order, none empty
    assert all(d.text for d in deltas[:-1])
    final = deltas[-1]
    assert final.text == ""
    assert final.finish_reason == "stop"
    assert final.usage == Usage(prompt_tokens=7, completion_tokens=12)


async def test_reply_cut_by_max_tokens_finishes_with_length(server: FakeOpenAI) -> None:
    server.enqueue(Reply(tokens=50))
    deltas = await collect(backend_for(server), request(max_tokens=5), [])

    assert len(texts(deltas)) == 5
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].usage is not None
    assert deltas[-1].usage.completion_tokens == 5


async def test_no_usage_from_server_leaves_usage_to_the_caller(server: FakeOpenAI) -> None:
    server.enqueue(Reply(tokens=3, usage=False))
    deltas = await collect(backend_for(server), request(), [])

    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage is None


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/"])
async def test_request_carries_the_generation_settings(server: FakeOpenAI, suffix: str) -> None:
    req = request(temperature=0.3, top_p=0.9, stop=["\nUser:", "</s>"])
    await collect(backend_for(server, suffix=suffix), req, [])

    recorded = server.requests[0]
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    body = recorded.body
    assert body["messages"] == req.messages
    assert body["model"] == "my-model"
    assert body["max_tokens"] == 64
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["stop"] == ["\nUser:", "</s>"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert recorded.headers["authorization"] == f"Bearer {TOKEN}"


async def test_base_url_without_model_and_without_token(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Hugging Face login on the machine must not leak to a third-party server.
    monkeypatch.setenv("HF_TOKEN", "hf_machine_login_token")
    spec = HFModel(id="local-tgi", backend="hf", base_url=server.base_url)
    deltas = await collect(HFBackend(spec, None), request(), [])

    assert texts(deltas) == server.requests[0].sent
    assert "authorization" not in server.requests[0].headers
    assert "model" in server.requests[0].body  # a placeholder; TGI ignores it


class _ToLocalServer(httpx2.AsyncBaseTransport):
    """Sends every request to the local server, as a DNS override would."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def hub_router_is_local(server: FakeOpenAI) -> Iterator[None]:
    """The model-id form calls https://router.huggingface.co; the library's
    documented hook for its HTTP client (``set_async_client_factory``) points
    that at the local server, still over real HTTP."""
    set_async_client_factory(
        lambda: httpx2.AsyncClient(transport=_ToLocalServer(server.port), timeout=None)
    )
    try:
        yield
    finally:
        set_async_client_factory(default_async_client_factory)


@pytest.mark.usefixtures("hub_router_is_local")
async def test_model_id_goes_to_inference_providers_router(server: FakeOpenAI) -> None:
    spec = HFModel(id="llama", backend="hf", model=HUB_MODEL)
    deltas = await collect(HFBackend(spec, TOKEN), request(), [])

    recorded = server.requests[0]
    assert recorded.headers["host"] == "router.huggingface.co"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == f"Bearer {TOKEN}"
    assert recorded.body["model"] == HUB_MODEL
    assert texts(deltas) == recorded.sent
    assert deltas[-1].usage is not None


# -- refusals before the stream ------------------------------------------------


async def test_429_is_rate_limited_with_retry_after(server: FakeOpenAI) -> None:
    server.enqueue(Refuse(429, message="slow down", retry_after="7"))
    with pytest.raises(BackendRateLimited) as caught:
        await collect(backend_for(server), request(), [])

    assert caught.value.retryable
    assert caught.value.retry_after == 7.0
    assert "429" in caught.value.message
    assert "slow down" in caught.value.message


async def test_429_retry_after_as_http_date(server: FakeOpenAI) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.enqueue(Refuse(429, retry_after=when))
    with pytest.raises(BackendRateLimited) as caught:
        await collect(backend_for(server), request(), [])

    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_unavailable(server: FakeOpenAI, status: int) -> None:
    server.enqueue(Refuse(status, message="model is loading"))
    with pytest.raises(BackendUnavailable) as caught:
        await collect(backend_for(server), request(), [])

    assert caught.value.retryable
    assert str(status) in caught.value.message
    assert "model is loading" in caught.value.message


async def test_408_is_a_timeout(server: FakeOpenAI) -> None:
    server.enqueue(Refuse(408))
    with pytest.raises(BackendTimeout):
        await collect(backend_for(server), request(), [])


@pytest.mark.parametrize(
    "refusal",
    [
        Refuse(400, message=f"max_tokens too large for key {TOKEN}"),
        Refuse(400, message=f"max_tokens too large for key {TOKEN}", chunked=True),
        Refuse(400, message=f"max_tokens too large for key {TOKEN}", tgi_style=True),
    ],
    ids=["openai-body", "chunked-body", "tgi-body"],
)
async def test_400_is_a_backend_error_that_never_shows_the_token(
    server: FakeOpenAI, refusal: Refuse
) -> None:
    server.enqueue(refusal)
    with pytest.raises(BackendError) as caught:
        await collect(backend_for(server), request(), [])

    error = caught.value
    assert not error.retryable
    assert "400" in error.message
    assert "max_tokens too large" in error.message
    # Not in the message, nor in the chained library error a log would print.
    assert TOKEN not in "".join(traceback.format_exception(error))


@pytest.mark.parametrize("status", [401, 403, 404, 422])
async def test_other_4xx_are_backend_errors(server: FakeOpenAI, status: int) -> None:
    server.enqueue(Refuse(status, message="nope"))
    with pytest.raises(BackendError) as caught:
        await collect(backend_for(server), request(), [])

    assert type(caught.value) is BackendError
    assert str(status) in caught.value.message


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = HFModel(id="gone", backend="hf", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(BackendUnavailable):
        await collect(HFBackend(spec, TOKEN), request(), [])


# -- failures during the stream ------------------------------------------------


async def test_connection_cut_mid_stream_is_unavailable_after_the_partial_text(
    server: FakeOpenAI,
) -> None:
    server.enqueue(Cut(after=3))
    received: list[Delta] = []
    with pytest.raises(BackendUnavailable) as caught:
        await collect(backend_for(server), request(), received)

    assert texts(received) == server.requests[0].sent
    assert len(received) == 3
    assert caught.value.message == "upstream connection lost"


async def test_error_object_in_the_stream_is_a_backend_error(server: FakeOpenAI) -> None:
    server.enqueue(StreamError(after=2, message="CUDA out of memory", error_type="generation"))
    received: list[Delta] = []
    with pytest.raises(BackendError) as caught:
        await collect(backend_for(server), request(), received)

    assert type(caught.value) is BackendError
    assert "CUDA out of memory" in caught.value.message
    assert texts(received) == server.requests[0].sent


async def test_a_failed_stream_leaves_no_upstream_connection_open(server: FakeOpenAI) -> None:
    # The server would hold the connection forever, and the caller keeps the
    # error (and with it the traceback's frames) alive, as a retry loop does.
    server.enqueue(StreamError(after=1, hold=True))
    with pytest.raises(BackendError) as caught:
        await collect(backend_for(server), request(), [])
    failed_at = time.monotonic()

    recorded = server.requests[0]
    async with asyncio.timeout(2):
        await recorded.disconnected.wait()
    assert recorded.disconnected_at is not None
    assert recorded.disconnected_at - failed_at < 0.5
    assert caught.value.__cause__ is not None


async def test_malformed_stream_is_unavailable(server: FakeOpenAI) -> None:
    server.enqueue(Garbage(after=1))
    with pytest.raises(BackendUnavailable) as caught:
        await collect(backend_for(server), request(), [])

    assert "malformed" in caught.value.message


async def test_overloaded_in_the_stream_is_unavailable(server: FakeOpenAI) -> None:
    server.enqueue(StreamError(message="Model is overloaded", error_type="overloaded"))
    with pytest.raises(BackendUnavailable):
        await collect(backend_for(server), request(), [])


# -- stopping and silence --------------------------------------------------------


async def test_cancelling_the_consumer_closes_the_upstream_connection(server: FakeOpenAI) -> None:
    server.enqueue(Reply(tokens=600, interval=0.1))
    backend = backend_for(server)
    first = asyncio.Event()
    received: list[Delta] = []

    async def consume() -> None:
        async for delta in backend.stream(request()):
            received.append(delta)
            first.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await first.wait()
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    recorded = server.requests[0]
    async with asyncio.timeout(2):
        await recorded.disconnected.wait()
    assert recorded.disconnected_at is not None
    assert recorded.disconnected_at - cancelled_at < 0.5
    assert len(recorded.sent) < 600


async def test_closing_the_iterator_closes_the_upstream_connection(server: FakeOpenAI) -> None:
    server.enqueue(Reply(tokens=600, interval=0.1))
    async with aclosing(backend_for(server).stream(request())) as deltas:
        async for _ in deltas:
            break
        closed_at = time.monotonic()

    recorded = server.requests[0]
    async with asyncio.timeout(2):
        await recorded.disconnected.wait()
    assert recorded.disconnected_at is not None
    assert recorded.disconnected_at - closed_at < 0.5


async def test_silent_upstream_times_out_and_is_disconnected(server: FakeOpenAI) -> None:
    server.enqueue(Stall(after=2))
    received: list[Delta] = []
    started = time.monotonic()
    with pytest.raises(BackendTimeout) as caught:
        await collect(backend_for(server, idle_timeout=0.3), request(), received)

    assert time.monotonic() - started < 2
    assert caught.value.retryable
    assert len(texts(received)) == 2
    recorded = server.requests[0]
    async with asyncio.timeout(2):
        await recorded.disconnected.wait()


async def test_no_response_within_timeout_is_a_timeout(server: FakeOpenAI) -> None:
    server.enqueue(Hang())
    with pytest.raises(BackendTimeout) as caught:
        await collect(backend_for(server, timeout=0.3, idle_timeout=5), request(), [])

    assert "0.3s" in caught.value.message
    recorded = server.requests[0]
    async with asyncio.timeout(2):
        await recorded.disconnected.wait()


async def test_model_id_with_a_non_hf_key_is_refused_without_retry() -> None:
    # The router only takes Hugging Face tokens; no request can succeed.
    key = "sk-not-a-hugging-face-key"
    spec = HFModel(id="llama", backend="hf", model=HUB_MODEL)
    with pytest.raises(BackendError) as caught:
        await collect(HFBackend(spec, key), request(), [])

    assert not caught.value.retryable
    assert key not in "".join(traceback.format_exception(caught.value))


def test_backend_shows_no_token_and_has_no_tokenizer() -> None:
    spec = HFModel(id="x", backend="hf", model=HUB_MODEL)
    backend = HFBackend(spec, TOKEN)
    assert TOKEN not in repr(backend)
    assert backend.count_tokens("hello") is None
