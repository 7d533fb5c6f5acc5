"""Same-origin checks against cross-site request forgery and cross-site
WebSocket hijacking.

A browser attaches the session cookie to a WebSocket opened by any page, and
to a form or ``fetch`` POST from any page of the same *site* (SameSite=Lax
does not tell ``chat.example.com`` from ``evil.example.com``). What the page
cannot forge is the ``Origin`` header (and ``Sec-Fetch-Site``). So a request
that a browser could have sent with the cookie on its own is accepted only
from the gateway's own origin or one listed in ``TIDECHAT_ALLOWED_ORIGINS``.

A request with a bearer token is not checked: a page cannot make the browser
add an ``Authorization`` header to another origin's request without that
origin's CORS consent (which tidechat never gives), so such a request comes
from a script that holds the token anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: Methods that change nothing; everything else is a write.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` lower-cased, default port dropped; None if it
    is not an origin (``null``, a path, garbage)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{_bracket(host)}"
    return f"{scheme}://{_bracket(host)}:{port}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _host_port(host_header: str, default_port: int) -> tuple[str, int] | None:
    try:
        parts = urlsplit("//" + host_header.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port or default_port


def parse_allowed(values: Iterable[str]) -> frozenset[str]:
    """The normalized form of each configured origin (unparseable ones dropped
    by the settings validator before this)."""
    return frozenset(o for o in (normalize_origin(v) for v in values) if o)


def same_origin(origin: str, host_header: str | None) -> bool:
    """Whether ``origin`` names the host the request was sent to.

    The scheme is not compared: behind a TLS-terminating proxy the gateway
    speaks plain HTTP while the page is ``https``; host and port are what
    tell one site from another here.
    """
    normalized = normalize_origin(origin)
    if normalized is None or not host_header:
        return False
    parts = urlsplit(normalized)
    scheme = parts.scheme
    target = _host_port(host_header, _DEFAULT_PORTS[scheme])
    return target is not None and target == (parts.hostname, parts.port or _DEFAULT_PORTS[scheme])


def origin_allowed(origin: str, host_header: str | None, allowed: frozenset[str]) -> bool:
    normalized = normalize_origin(origin)
    if normalized is None:
        return False  # "null" (sandboxed frames, some redirects) or garbage
    return normalized in allowed or same_origin(origin, host_header)


def has_bearer(headers: Mapping[str, str]) -> bool:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def cross_site_refused(
    method: str, headers: Mapping[str, str], allowed: frozenset[str], *, websocket: bool = False
) -> bool:
    """Whether a request must be refused as a possible cross-site forgery.

    ``headers``: lower-cased names. Checked: every WebSocket upgrade and every
    write (not GET/HEAD/OPTIONS), unless it carries a bearer token. With an
    ``Origin``, it must be allowed; without one (an older browser, or not a
    browser at all), ``Sec-Fetch-Site`` must not say another site sent it.
    """
    if not websocket and method.upper() in SAFE_METHODS:
        return False
    if has_bearer(headers):
        return False
    origin = headers.get("origin")
    if origin is not None:
        return not origin_allowed(origin, headers.get("host"), allowed)
    return headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site")
