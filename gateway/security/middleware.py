"""The ASGI layer every request passes first (pure ASGI, so streaming
responses and WebSockets go through untouched):

- **Cross-site refusal**: a write or a WebSocket upgrade that a page on
  another origin could have made with the session cookie is refused
  (``origin.py``): HTTP 403, or for a WebSocket an ``error`` frame
  ``forbidden`` and close 4403, before any route runs.
- **Body limits**: a body past the route's limit is refused with 413 before
  it is read whole: at once when ``Content-Length`` says so, else as soon
  as the bytes streamed in (chunked) pass it. What the client still sends
  is discarded by uvicorn as it arrives (never buffered) until its
  keep-alive timeout closes the connection; closing at once instead would
  reset the connection under the client, which would then often not see
  the 413 at all.
- **Headers** on every answer: a strict Content-Security-Policy, no
  framing, no MIME sniffing, no referrer; HSTS when served over HTTPS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import error_body
from gateway.security.origin import cross_site_refused

#: What the web client needs and no more. Scripts: only our own files (the
#: theme is set by /theme-init.js, not an inline script). Styles: our own
#: stylesheet; KaTeX and the virtual list set element styles from script
#: (CSSOM), which CSP does not restrict, so no 'unsafe-inline'. Fonts:
#: KaTeX's, bundled. Images: our own and data: URIs (icons); replies
#: never load remote images (web client), and the CSP backs that up.
#: connect-src 'self' covers the same-origin WebSocket.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: Two years, subdomains too: only sent when TIDECHAT_COOKIE_SECURE says
#: the site is served over HTTPS.
HSTS = "max-age=63072000; includeSubDomains"
#: Auth bodies are a name and a password or two: a few KB at most.
AUTH_BODY_MAX_BYTES = 16 * 1024
CLOSE_FORBIDDEN = 4403


@dataclass(frozen=True)
class SecurityPolicy:
    max_request_bytes: int
    allowed_origins: frozenset[str] = frozenset()
    hsts: bool = False
    #: Path -> body limit, for routes whose limit is not the default.
    route_limits: Mapping[str, int] = field(default_factory=dict)

    def body_limit(self, path: str) -> int:
        exact = self.route_limits.get(path.rstrip("/") or "/")
        if exact is not None:
            return exact
        if path.startswith("/api/auth/"):
            return AUTH_BODY_MAX_BYTES
        return self.max_request_bytes

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if self.hsts:
            out.append((b"strict-transport-security", HSTS.encode()))
        return out


class _BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes its limit (the 413 is sent already)."""


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        name = key.decode("latin-1").lower()
        if name not in out:  # the first of repeated headers, as Starlette reads them
            out[name] = value.decode("latin-1")
    return out


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy
        self._extra_headers = policy.headers()
        self._extra_names = {name for name, _ in self._extra_headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not cross_site_refused(
            "GET", _headers(scope), self.policy.allowed_origins, websocket=True
        ):
            await self.app(scope, receive, send)
            return
        # Refused like the app refuses (an error frame, then a close code the
        # client can act on), not with a bare HTTP 403 that a browser reports
        # as an anonymous failure.
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        frame = {
            "type": "error",
            "code": "forbidden",
            "message": "this page's origin may not open tidechat's socket",
        }
        await send({"type": "websocket.send", "text": json.dumps(frame)})
        await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN, "reason": "origin"})

    def _with_headers(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    h for h in message.get("headers", []) if h[0].lower() not in self._extra_names
                ]
                message = {**message, "headers": kept + self._extra_headers}
            await send(message)

        return wrapped

    async def _respond(self, send: Send, status: int, code: str, message: str) -> None:
        body = json.dumps(error_body(code, message)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await self._with_headers(send)(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        if cross_site_refused(scope["method"], headers, self.policy.allowed_origins):
            await self._respond(
                send, 403, "forbidden", "a page on another origin may not make this request"
            )
            return
        limit = self.policy.body_limit(scope["path"])
        too_large = f"the request body is larger than this route's limit of {limit:,} bytes"
        try:
            declared = int(headers.get("content-length", ""))
        except ValueError:
            declared = None
        if declared is not None and declared > limit:
            await self._respond(send, 413, "too_large", too_large)
            return
        received = 0
        refused = False
        started = False
        send_with_headers = self._with_headers(send)

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not refused:
                        refused = True
                        await self._respond(send, 413, "too_large", too_large)
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out; whatever the app makes of the abort is dropped
            if message["type"] == "http.response.start":
                started = True
            await send_with_headers(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # The abort raised into the app, however the app wrapped it.
            if not refused:
                raise
