"""What an upstream's failure means for a turn: library and transport
exceptions of ``huggingface_hub`` and ``httpx2`` mapped to the worker's own
hierarchy (``worker.errors``), with the server's own words, short, and
never the token. Used by the ``hf`` backend (``hf.py``), kept apart so the
backend reads as the happy path."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn

import httpx2
from huggingface_hub.errors import HfHubHTTPError, OverloadedError, TextGenerationError

from worker.errors import (
    BackendError,
    BackendRateLimited,
    BackendTimeout,
    BackendUnavailable,
    TurnError,
)

#: How much of an error body to read, and to quote: enough for a server's
#: sentence, bounded so a misbehaving server cannot flood logs or memory.
_ERROR_BODY_LIMIT = 64 * 1024
_ERROR_TEXT_LIMIT = 300
#: Seconds to spend reading an error body that was not read yet.
_ERROR_BODY_TIMEOUT = 2.0


class UpstreamErrors:
    """Maps one backend's exceptions; ``token`` is redacted from every message."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    async def reraise(self, exc: Exception, timeout_message: str, *, streaming: bool) -> NoReturn:
        """Raise the worker's error for ``exc`` (chained), or ``exc`` itself
        when it is none of the library's or transport's."""
        mapped = await self.map(exc, timeout_message, streaming=streaming)
        if mapped is None:
            raise exc
        raise mapped from exc

    async def map(
        self, exc: Exception, timeout_message: str, *, streaming: bool
    ) -> TurnError | None:
        """The worker's error for a library or transport exception; None for
        anything else, which is a bug to surface as it is."""
        # The original stays chained as __cause__ and may end up in a log.
        exc.args = tuple(self.redact(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(exc, TimeoutError | httpx2.TimeoutException):
            # asyncio.timeout, InferenceTimeoutError and httpx2's own timeouts.
            return BackendTimeout(timeout_message)
        if isinstance(exc, HfHubHTTPError):
            return await self._from_response(exc.response)
        if isinstance(exc, TextGenerationError):
            # An error object inside the stream, after the 200.
            text = self.redact(_error_text(exc.args[0] if exc.args else ""))
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
            return BackendError(f"cannot call upstream: {self.redact(str(exc))}")
        if isinstance(exc, httpx2.HTTPError):
            return BackendUnavailable(f"upstream HTTP error: {type(exc).__name__}")
        return None

    async def _from_response(self, response: httpx2.Response) -> TurnError:
        status = response.status_code
        text = self.redact(await _read_error_text(response))
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

    def redact(self, text: str) -> str:
        # A server may echo the credentials it rejected.
        return text.replace(self._token, "[token]") if self._token else text


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
