"""Hugging Face Inference Providers, or any OpenAI-compatible server, as a backend.

One ``huggingface_hub.AsyncInferenceClient`` per turn, closed when the turn
ends however it ends. In huggingface_hub 2.x the streaming HTTP response is
entered into the client's exit stack and released only by ``client.close()``:
a client shared across turns would keep every stopped turn's connection open,
and the inference server would go on generating for nobody. Creating the
client is cheap (no connection until the request), so nothing is kept
between turns.

Library and transport exceptions are mapped at this boundary to the worker's
own hierarchy (``worker.errors``), so the turn runner decides on retries
without knowing about HTTP. Messages name the status and the server's own
words, never the token.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast

import httpx2
from huggingface_hub import (
    AsyncInferenceClient,
    ChatCompletionInputMessage,
    ChatCompletionInputStreamOptions,
    ChatCompletionStreamOutput,
)
from huggingface_hub.errors import HfHubHTTPError, OverloadedError, TextGenerationError

from shared.conversation import FinishReason, Usage
from shared.models_file import HFModel
from worker.backends.base import Delta, GenerationRequest
from worker.errors import (
    BackendError,
    BackendRateLimited,
    BackendTimeout,
    BackendUnavailable,
    TurnError,
)

#: OpenAI's finish reasons (and TGI's older ones) as tidechat's. Anything
#: else (a stop sequence, a content filter, a tool call) ended the reply
#: normally as far as a chat user is concerned.
_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length"}
#: How much of an error body to read, and to quote: enough for a server's
#: sentence, bounded so a misbehaving server cannot flood logs or memory.
_ERROR_BODY_LIMIT = 64 * 1024
_ERROR_TEXT_LIMIT = 300
#: Seconds to spend reading an error body that was not read yet.
_ERROR_BODY_TIMEOUT = 2.0


class HFBackend:
    """Streams chat completions from a Hub model id (through Inference
    Providers, ``spec.provider`` or the router's automatic choice) or from
    ``spec.base_url`` (TGI, vLLM, llama.cpp server, any OpenAI-compatible
    endpoint).

    ``timeout`` bounds connecting and waiting for the response to start (a
    long prompt's prefill can take a while on a busy server); ``idle_timeout``
    bounds the silence between two chunks once it has started, so a hung
    upstream fails the turn instead of holding it forever.

    Stop a turn by cancelling the task that iterates ``stream()`` or by
    closing the iterator (``contextlib.aclosing``): either closes the HTTP
    connection at once, which is how the inference server learns to stop.
    """

    def __init__(
        self,
        spec: HFModel,
        token: str | None,
        *,
        timeout: float = 60.0,
        idle_timeout: float = 30.0,
    ) -> None:
        self.spec = spec
        self._token = token
        self.timeout = timeout
        self.idle_timeout = idle_timeout

    def __repr__(self) -> str:
        # Spelled out so that no default repr ever shows the token.
        return f"HFBackend(model={self.spec.id!r})"

    def count_tokens(self, text: str) -> int | None:
        # The tokenizer lives on the server; the caller estimates.
        return None

    async def load(self) -> None:
        """Nothing to load: the model runs upstream."""

    async def aclose(self) -> None:
        # Every client belongs to one turn and is closed with it.
        return None

    def _client(self) -> AsyncInferenceClient:
        if self.spec.base_url:
            # Without a token of its own the library would fall back to the
            # machine's Hugging Face token (HF_TOKEN, the login file) and send
            # it to whatever server base_url names; a None header is dropped.
            headers = None if self._token else cast(dict[str, str], {"authorization": None})
            return AsyncInferenceClient(
                base_url=self.spec.base_url,
                token=self._token,
                timeout=self._transport_timeout,
                headers=headers,
            )
        return AsyncInferenceClient(
            provider=cast(Any, self.spec.provider),
            token=self._token,
            timeout=self._transport_timeout,
        )

    @property
    def _transport_timeout(self) -> float:
        # httpx2's per-operation limit, only a backstop: the asyncio timeouts
        # in stream() are the ones meant to fire, with the clearer message.
        return max(self.timeout, self.idle_timeout) + 1.0

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        client = self._client()
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    chunks = await client.chat_completion(
                        _messages(request),
                        model=self.spec.model,
                        stream=True,
                        max_tokens=request.max_tokens,
                        temperature=request.temperature,
                        top_p=request.top_p,
                        stop=request.stop or None,
                        stream_options=ChatCompletionInputStreamOptions(include_usage=True),
                    )
            except Exception as exc:
                mapped = await self._map_error(
                    exc, f"no response from upstream within {self.timeout:g}s", streaming=False
                )
                if mapped is None:
                    raise
                raise mapped from exc

            finish: str | None = None
            usage: Usage | None = None
            iterator = aiter(chunks)
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    mapped = await self._map_error(
                        exc, f"upstream sent nothing for {self.idle_timeout:g}s", streaming=True
                    )
                    if mapped is None:
                        raise
                    raise mapped from exc
                usage = _usage(chunk) or usage
                for choice in chunk.choices or []:
                    if choice.index not in (0, None):
                        continue  # n=1 is asked for; ignore anything else
                    finish = choice.finish_reason or finish
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        yield Delta(text=text)
            yield Delta(finish_reason=_FINISH_REASONS.get(finish or "stop", "stop"), usage=usage)
        finally:
            # Releases the streamed response and its connection (see the
            # module docstring); runs on cancellation and on aclose() too.
            await client.close()  # type: ignore[no-untyped-call]

    async def _map_error(
        self, exc: Exception, timeout_message: str, *, streaming: bool
    ) -> TurnError | None:
        """The worker's error for a library or transport exception; None for
        anything else, which is a bug to surface as it is."""
        # The original stays chained as __cause__ and may end up in a log.
        exc.args = tuple(self._redact(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(exc, TimeoutError | httpx2.TimeoutException):
            # asyncio.timeout, InferenceTimeoutError and httpx2's own timeouts.
            return BackendTimeout(timeout_message)
        if isinstance(exc, HfHubHTTPError):
            return await self._from_response(exc.response)
        if isinstance(exc, TextGenerationError):
            # An error object inside the stream, after the 200.
            text = self._redact(_error_text(exc.args[0] if exc.args else ""))
            if isinstance(exc, OverloadedError) or "overload" in text.lower():
                return BackendUnavailable(f"upstream overloaded: {text}")
            return BackendError(f"upstream error: {text}")
        if isinstance(exc, httpx2.ConnectError):
            return BackendUnavailable("upstream unreachable")
        if isinstance(exc, httpx2.TransportError | httpx2.StreamError | httpx2.DecodingError):
            # Reset, cut mid-body (incomplete chunked read), protocol errors.
            return BackendUnavailable("upstream connection lost")
        if isinstance(exc, ValueError | TypeError):
            if streaming:
                # A line that is not JSON, or JSON that is not a chunk.
                return BackendUnavailable("upstream sent a malformed stream")
            # The library refusing to build the request: a provider that is
            # unknown or does not serve the model, no token or one of the
            # wrong kind for the router.
            return BackendError(f"cannot call upstream: {self._redact(str(exc))}")
        if isinstance(exc, httpx2.HTTPError):
            return BackendUnavailable(f"upstream HTTP error: {type(exc).__name__}")
        return None

    async def _from_response(self, response: httpx2.Response) -> TurnError:
        status = response.status_code
        text = self._redact(await _read_error_text(response))
        said = f": {text}" if text else ""
        if status == 429:
            return BackendRateLimited(
                f"upstream rate limit (429){said}", retry_after=_retry_after(response.headers)
            )
        if status == 408:
            return BackendTimeout(f"upstream timed out (408){said}")
        if status >= 500:
            return BackendUnavailable(f"upstream unavailable ({status}){said}")
        return BackendError(f"upstream refused the request ({status}){said}")

    def _redact(self, text: str) -> str:
        # A server may echo the credentials it rejected.
        return text.replace(self._token, "[token]") if self._token else text


def _messages(request: GenerationRequest) -> list[dict[Any, Any] | ChatCompletionInputMessage]:
    return [dict(message) for message in request.messages]


def _usage(chunk: ChatCompletionStreamOutput) -> Usage | None:
    usage = chunk.usage
    if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return None
    return Usage(
        prompt_tokens=int(usage.prompt_tokens or 0),
        completion_tokens=int(usage.completion_tokens or 0),
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date (RFC 9110)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


async def _read_error_body(response: httpx2.Response) -> bytes:
    """The error body, reading it if the library has not.

    The library reads it only when the server sent Content-Length; a chunked
    error body is still unread on the open streaming response.
    """
    try:
        return response.content
    except httpx2.ResponseNotRead:
        pass
    body = bytearray()
    try:
        async with asyncio.timeout(_ERROR_BODY_TIMEOUT):
            async for part in response.aiter_bytes():
                body += part
                if len(body) >= _ERROR_BODY_LIMIT:
                    break
    except (httpx2.HTTPError, RuntimeError, TimeoutError):
        pass  # a partial body, or none, still makes an error message
    return bytes(body)


async def _read_error_text(response: httpx2.Response) -> str:
    body = await _read_error_body(response)
    if not body:
        return ""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        if "html" in response.headers.get("content-type", "").lower():
            return ""  # a proxy's error page says nothing useful in one line
        return _shorten(body.decode("utf-8", "replace"))
    return _error_text(payload)


def _error_text(payload: Any) -> str:
    """The human part of an error payload, whichever server's shape it has:
    OpenAI's ``{"error": {"message"}}``, TGI's ``{"error": str}``, FastAPI's
    ``{"detail": ...}``."""
    if isinstance(payload, dict):
        for key in ("error", "message", "detail"):
            if payload.get(key):
                return _error_text(payload[key])
        return _shorten(json.dumps(payload))
    if isinstance(payload, list):
        return _shorten("; ".join(_error_text(item) for item in payload))
    return _shorten(str(payload))


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_TEXT_LIMIT else text[: _ERROR_TEXT_LIMIT - 1] + "…"
