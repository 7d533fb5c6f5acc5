"""The address a request really comes from, for per-address throttling.

Directly exposed, the gateway takes the TCP peer. Behind a reverse proxy
(the compose front door, a load balancer) every request comes from the
proxy, and the client is in ``X-Forwarded-For``, which anyone can also send.
So the header is read only when the peer is a proxy listed in
``TIDECHAT_TRUSTED_PROXIES``, and then from the right: each trusted proxy
appends the address it saw, so the rightmost address that is not a trusted
proxy is the client (anything left of it may be forged). uvicorn's own
``--proxy-headers`` is turned off (``tidechat gateway`` does), so it does
not trust 127.0.0.1 behind our back.

IPv6 clients are throttled by their /64: one host usually holds a whole /64
and could otherwise walk through 2**64 addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs or single addresses (``10.0.0.0/8``, ``127.0.0.1``); raises ValueError."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:5123"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address in net for net in proxies)


def client_address(
    peer: str | None, headers: Mapping[str, str], proxies: tuple[Network, ...]
) -> str:
    """The client's address as text ("unknown" when there is no peer)."""
    peer_address = _address(peer) if peer else None
    if peer_address is None:
        return peer or "unknown"
    if not proxies or not _trusted(peer_address, proxies):
        return str(peer_address)
    hops = [h for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage: trust nothing left of it
        client = address
        if not _trusted(address, proxies):
            break
    return str(client)


def scope_client_address(scope: Mapping[str, Any], proxies: tuple[Network, ...]) -> str:
    """``client_address`` for an ASGI scope (HTTP or WebSocket)."""
    client = scope.get("client")
    peer = client[0] if client else None
    # Several X-Forwarded-For lines count as one list, in order.
    hops = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-forwarded-for"]
    return client_address(peer, {"x-forwarded-for": ",".join(hops)}, proxies)


def throttle_subject(address: str) -> str:
    """What an address is throttled as: itself (IPv4), its /64 (IPv6)."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return address
