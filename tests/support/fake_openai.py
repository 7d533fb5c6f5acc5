"""A small OpenAI-compatible chat-completions server of the tests' own.

It speaks HTTP/1.1 by hand on top of ``asyncio.start_server`` so that a test
sees exactly what a real inference server would: the request body and headers
as sent, and the moment the client closed the connection (how a test proves
that stopping a turn really closed the upstream request). Replies use the
streaming format TGI, vLLM, llama.cpp server and OpenAI share: SSE events
``data: {json}`` with ``choices[0].delta.content``, a finish chunk, a usage
chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``.

In-process (tests)::

    async with FakeOpenAI() as server:           # 127.0.0.1, a free port
        server.enqueue(Refuse(429, retry_after="7"))   # next request answers 429
        ... HFModel(base_url=server.base_url, ...)
        server.requests[0].body["max_tokens"]

As a process (end-to-end tests)::

    python -m tests.support.fake_openai --port 8099 [--tokens 16] [--rate 0]

It prints ``fake_openai listening on http://127.0.0.1:8099`` once it accepts
connections. With no queued scenario, a marker in the last user message picks
how the request is answered:

==================  ======================================================
``[[429]]``         HTTP 429 with ``Retry-After: 7``
``[[503]]``         HTTP 503 (any ``[[NNN]]`` status works: 400, 401, 500...)
``[[400]]``         HTTP 400 with an OpenAI-style error body
``[[cut:K]]``       K content chunks, then the connection is dropped mid-body
``[[slow]]``        a token every 100 ms for a minute (stop / cancel tests)
``[[stall]]``       one chunk, then silence until the client goes away
                    (``[[stall:K]]``: K chunks first)
``[[hang]]``        no answer at all, not even the status line
``[[error]]``       one chunk, then an in-stream ``{"error": ...}`` object
``[[garbage]]``     one chunk, then a ``data:`` line that is not JSON
``[[overloaded]]``  one chunk, then an in-stream error of type ``overloaded``
``[[tokens:N]]``    a normal reply of N tokens (default 16, or ``--tokens``)
``[[rate:R]]``      R tokens a second (default as fast as possible, ``--rate``)
(none)              a normal reply that starts by quoting the question
==================  ======================================================

A reply is cut to the request's ``max_tokens`` (``finish_reason`` "length").
``GET /health`` answers 200 so a harness can wait for the process to be up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = [
    "Cut",
    "FakeOpenAI",
    "Garbage",
    "Hang",
    "RecordedRequest",
    "Refuse",
    "Reply",
    "Scenario",
    "Stall",
    "StreamError",
    "reply_tokens",
    "scenario_from_markers",
]


@dataclass(frozen=True)
class Reply:
    """A normal streamed answer of ``tokens`` pieces, ``interval`` seconds apart."""

    tokens: int = 16
    interval: float = 0.0
    #: Send the usage chunk when the client asks for it (``include_usage``).
    usage: bool = True


@dataclass(frozen=True)
class Refuse:
    """An HTTP error instead of a stream."""

    status: int
    message: str = ""
    retry_after: str | None = None
    #: Send the body chunked, without Content-Length (some proxies do).
    chunked: bool = False
    #: TGI's body shape ``{"error": str, "error_type": str}`` instead of OpenAI's
    #: ``{"error": {"message", "type", "code"}}``.
    tgi_style: bool = False


@dataclass(frozen=True)
class Cut:
    """``after`` content chunks, then the connection drops mid-body."""

    after: int = 3


@dataclass(frozen=True)
class Stall:
    """``after`` content chunks, then silence until the client gives up."""

    after: int = 1


@dataclass(frozen=True)
class Hang:
    """Read the request and never answer, not even the status line."""


@dataclass(frozen=True)
class Garbage:
    """``after`` content chunks, then a ``data:`` line that is not JSON."""

    after: int = 1


@dataclass(frozen=True)
class StreamError:
    """``after`` content chunks, then an error object inside the stream."""

    after: int = 1
    message: str = "CUDA out of memory"
    error_type: str = "generation"
    #: Keep the connection open after the error instead of ending the body,
    #: like a proxy that never finishes: only the client can close it.
    hold: bool = False


Scenario = Reply | Refuse | Cut | Stall | Hang | Garbage | StreamError

#: How long ``[[slow]]`` keeps going: long enough that only a stop ends it.
SLOW_TOKENS = 600
SLOW_INTERVAL = 0.1

_MARKER = re.compile(r"\[\[([a-z]+|\d{3})(?::([0-9.]+))?\]\]")
_VOCABULARY = ["tide", "wave", "harbor", "current", "drift", "shore", "reef", "sail"]


@dataclass
class RecordedRequest:
    """One request as the server saw it, and what happened to it."""

    method: str
    path: str
    #: Header names in lower case.
    headers: dict[str, str]
    #: The parsed JSON body, or None when there was none or it was not JSON.
    body: Any
    scenario: Scenario | None = None
    received_at: float = field(default_factory=time.monotonic)
    #: Content pieces streamed to the client, in order.
    sent: list[str] = field(default_factory=list)
    #: ``time.monotonic()`` when the whole reply was written.
    finished_at: float | None = None
    #: ``time.monotonic()`` when the client closed the connection before the
    #: server was done with it.
    disconnected_at: float | None = None
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when the server is done with the request, whichever way it ended.
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def text(self) -> str:
        return "".join(self.sent)

    @property
    def last_user_message(self) -> str:
        return _last_user_message(self.body)


def _last_user_message(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def reply_tokens(question: str, count: int) -> list[str]:
    """The pieces of a normal reply: it quotes the question (markers removed)
    so an end-to-end test can tell which message was answered."""
    quoted = _MARKER.sub("", question).split()[:8]
    words = ["You", "said:", *quoted] if quoted else ["Hello."]
    i = 0
    while len(words) < count:
        words.append(_VOCABULARY[i % len(_VOCABULARY)])
        i += 1
    return [w if i == 0 else " " + w for i, w in enumerate(words[:count])]


def scenario_from_markers(text: str, default: Reply) -> Scenario:
    """The scenario a ``[[marker]]`` in ``text`` asks for (see the module docstring)."""
    tokens, interval = default.tokens, default.interval
    for name, arg in _MARKER.findall(text):
        if name.isdigit():
            status = int(name)
            return Refuse(status, retry_after="7" if status == 429 else None)
        if name == "cut":
            return Cut(after=int(float(arg)) if arg else 3)
        if name == "stall":
            return Stall(after=int(float(arg)) if arg else 1)
        if name == "slow":
            return Reply(tokens=SLOW_TOKENS, interval=SLOW_INTERVAL)
        if name == "hang":
            return Hang()
        if name == "garbage":
            return Garbage()
        if name == "error":
            return StreamError()
        if name == "overloaded":
            return StreamError(message="Model is overloaded", error_type="overloaded")
        if name == "tokens" and arg:
            tokens = int(float(arg))
        if name == "rate" and arg:
            rate = float(arg)
            interval = 1.0 / rate if rate > 0 else 0.0
    return Reply(tokens=tokens, interval=interval, usage=default.usage)


class FakeOpenAI:
    """The server. Use ``async with FakeOpenAI() as server`` in a test's event
    loop, or ``main()`` for a separate process."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, default: Reply | None = None):
        self.host = host
        self.port = port
        self.default = default or Reply()
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Scenario] = deque()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._arrived = asyncio.Condition()

    @property
    def base_url(self) -> str:
        """The server root, as a ``base_url`` for TGI-style clients."""
        return f"http://{self.host}:{self.port}"

    def enqueue(self, *scenarios: Scenario) -> None:
        """Answer the next requests with these, in order; markers apply after."""
        self._queue.extend(scenarios)

    async def wait_for_request(self, index: int = 0) -> RecordedRequest:
        """The ``index``-th request, waiting for it to arrive (wrap it in
        ``asyncio.timeout``)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) > index)
            return self.requests[index]

    async def start(self) -> FakeOpenAI:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        # Stalled and slow handlers only end when told to.
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    # -- one connection: one request, then close --------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        record: RecordedRequest | None = None
        try:
            record = await self._read_request(reader)
            if record is None:
                return
            async with self._arrived:
                self.requests.append(record)
                self._arrived.notify_all()
            await self._route(record, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if record is not None:
                record.done.set()
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            self._handlers.discard(task)

    async def _read_request(self, reader: asyncio.StreamReader) -> RecordedRequest | None:
        request_line = await reader.readline()
        if not request_line.strip():
            return None
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return RecordedRequest(method=method, path=path, headers=headers, body=body)

    async def _route(
        self, record: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        path = record.path.split("?", 1)[0]
        if record.method == "GET" and path == "/health":
            await _send_json(writer, 200, {"status": "ok"})
        elif record.method == "GET" and path.endswith("/models"):
            await _send_json(writer, 200, {"object": "list", "data": [{"id": "fake"}]})
        elif record.method == "POST" and path.endswith("/chat/completions"):
            scenario = (
                self._queue.popleft()
                if self._queue
                else scenario_from_markers(record.last_user_message, self.default)
            )
            record.scenario = scenario
            await self._chat(record, scenario, reader, writer)
        else:
            await _send_json(writer, 404, {"error": {"message": f"no route {path}"}})
        if record.finished_at is None and not record.disconnected.is_set():
            record.finished_at = time.monotonic()

    async def _chat(
        self,
        record: RecordedRequest,
        scenario: Scenario,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if isinstance(scenario, Refuse):
            await _send_refusal(writer, scenario)
            return
        body = record.body if isinstance(record.body, dict) else {}
        if isinstance(scenario, Hang):
            await _watch_disconnect(reader, record)
            return
        if not body.get("stream"):
            await _send_json(writer, 200, _completion(body, scenario))
            return
        watcher = asyncio.create_task(_watch_disconnect(reader, record))
        try:
            await _stream(writer, record, body, scenario)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


# -- HTTP and SSE writing ---------------------------------------------------


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_phrase(status)}", *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")


async def _send_json(writer: asyncio.StreamWriter, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    writer.write(
        _head(status, {"Content-Type": "application/json", "Content-Length": str(len(data))})
    )
    writer.write(data)
    await writer.drain()


async def _send_refusal(writer: asyncio.StreamWriter, refusal: Refuse) -> None:
    phrase = _phrase(refusal.status)
    message = refusal.message or f"fake upstream says {refusal.status} {phrase}"
    if refusal.tgi_style:
        payload: dict[str, Any] = {"error": message, "error_type": phrase.lower()}
    else:
        payload = {"error": {"message": message, "type": phrase.lower(), "code": refusal.status}}
    data = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if refusal.retry_after is not None:
        headers["Retry-After"] = refusal.retry_after
    if refusal.chunked:
        headers["Transfer-Encoding"] = "chunked"
        writer.write(_head(refusal.status, headers) + _chunk(data) + b"0\r\n\r\n")
    else:
        headers["Content-Length"] = str(len(data))
        writer.write(_head(refusal.status, headers) + data)
    await writer.drain()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return _chunk(f"data: {text}\n\n".encode())


def _chunk_payload(body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> Any:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or "fake",
        "system_fingerprint": "fake-openai",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


def _plan(body: dict[str, Any], scenario: Scenario) -> tuple[list[str], str]:
    """The pieces to send and the finish reason, honouring ``max_tokens``."""
    if isinstance(scenario, Reply):
        wanted = scenario.tokens
    elif isinstance(scenario, Refuse | Hang):
        wanted = 0
    else:
        wanted = scenario.after
    limit = body.get("max_tokens")
    count = min(wanted, limit) if isinstance(limit, int) else wanted
    finish = "length" if count < wanted else "stop"
    return reply_tokens(_last_user_message(body), count), finish


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt = sum(
        max(1, len(m.get("content") or "") // 4)
        for m in body.get("messages") or []
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def _completion(body: dict[str, Any], scenario: Scenario) -> Any:
    pieces, finish = _plan(body, scenario)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "finish_reason": finish,
            }
        ],
        "usage": _usage(body, len(pieces)),
    }


async def _watch_disconnect(reader: asyncio.StreamReader, record: RecordedRequest) -> None:
    """Notice the client closing the connection: an HTTP/1.1 client sends
    nothing more while it waits for the response, so any EOF is the close."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(1024):
            pass
    if record.finished_at is None:
        record.disconnected_at = time.monotonic()
        record.disconnected.set()


async def _pause(record: RecordedRequest, seconds: float | None) -> bool:
    """Wait ``seconds`` (None: forever); True if the client went away meanwhile."""
    if seconds is not None and seconds <= 0:
        await asyncio.sleep(0)
    else:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await record.disconnected.wait()
    return record.disconnected.is_set()


async def _stream(
    writer: asyncio.StreamWriter, record: RecordedRequest, body: dict[str, Any], scenario: Scenario
) -> None:
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "Transfer-Encoding": "chunked",
    }
    writer.write(_head(200, headers))
    writer.write(_event(_chunk_payload(body, {"role": "assistant", "content": ""}, None)))
    await writer.drain()
    pieces, finish = _plan(body, scenario)
    interval = scenario.interval if isinstance(scenario, Reply) else 0.0
    for i, piece in enumerate(pieces):
        if i and await _pause(record, interval):
            return
        writer.write(_event(_chunk_payload(body, {"role": "assistant", "content": piece}, None)))
        await writer.drain()
        record.sent.append(piece)

    if isinstance(scenario, Cut):
        # Drop the connection without the terminating chunk: the client sees
        # an incomplete chunked body, as when a server crashes mid-reply.
        record.finished_at = time.monotonic()
        writer.transport.abort()
        return
    if isinstance(scenario, Stall):
        await _pause(record, None)
        return
    if isinstance(scenario, Garbage):
        writer.write(_event("{this is not json"))
    elif isinstance(scenario, StreamError):
        writer.write(_event({"error": scenario.message, "error_type": scenario.error_type}))
        if scenario.hold:
            await writer.drain()
            await _pause(record, None)
            return
    else:
        writer.write(_event(_chunk_payload(body, {"role": "assistant"}, finish)))
        options = body.get("stream_options") or {}
        if isinstance(scenario, Reply) and scenario.usage and options.get("include_usage"):
            usage_chunk = _chunk_payload(body, {}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage(body, len(record.sent))
            writer.write(_event(usage_chunk))
    writer.write(_event("[DONE]") + b"0\r\n\r\n")
    await writer.drain()
    record.finished_at = time.monotonic()


# -- as a process -------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=16, help="tokens in a normal reply")
    parser.add_argument("--rate", type=float, default=0.0, help="tokens a second; 0: no pause")
    args = parser.parse_args(argv)
    default = Reply(tokens=args.tokens, interval=1.0 / args.rate if args.rate > 0 else 0.0)

    async def run() -> None:
        async with FakeOpenAI(host=args.host, port=args.port, default=default) as server:
            print(f"fake_openai listening on {server.base_url}", flush=True)
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
