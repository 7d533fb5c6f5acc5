"""Same-origin checks and the client address behind proxies: pure logic."""

from __future__ import annotations

import pytest

from gateway.security.client_address import client_address, parse_networks, throttle_subject
from gateway.security.origin import cross_site_refused, normalize_origin, origin_allowed

NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("https://chat.example.com", "chat.example.com", True),
        ("https://chat.example.com", "chat.example.com:443", True),
        # TLS ends at the proxy: the gateway hears plain HTTP on the same host.
        ("https://CHAT.example.com:443", "chat.example.com", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("https://evil.example", "chat.example.com", False),
        ("https://evil.chat.example.com", "chat.example.com", False),  # a sibling subdomain
        ("https://chat.example.com.evil.example", "chat.example.com", False),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("null", "chat.example.com", False),
        ("file://", "chat.example.com", False),
        ("https://chat.example.com/path", "chat.example.com", False),
        ("garbage", "chat.example.com", False),
        ("https://chat.example.com", None, False),
    ],
)
def test_same_origin(origin: str, host: str | None, ok: bool) -> None:
    assert origin_allowed(origin, host, NONE) is ok


def test_extra_origins_from_the_setting() -> None:
    allowed = frozenset({normalize_origin("https://app.example.com")})  # type: ignore[arg-type]
    assert origin_allowed("https://app.example.com:443", "api.example.com", allowed)
    assert not origin_allowed("https://other.example.com", "api.example.com", allowed)


def test_which_requests_are_refused() -> None:
    evil = {"origin": "https://evil.example", "host": "chat.example.com"}
    assert cross_site_refused("POST", evil, NONE)
    assert cross_site_refused("DELETE", evil, NONE)
    assert cross_site_refused("GET", evil, NONE, websocket=True)
    assert not cross_site_refused("GET", evil, NONE)  # reads: CORS keeps the page out
    # A bearer token is never sent by a page on its own: scripts are not checked.
    assert not cross_site_refused("POST", {**evil, "authorization": "Bearer abc"}, NONE)
    assert cross_site_refused("POST", {**evil, "authorization": "Basic abc"}, NONE)
    # No Origin: a script, or an old browser that still says where it came from.
    assert not cross_site_refused("POST", {"host": "chat.example.com"}, NONE)
    for site in ("cross-site", "same-site"):
        assert cross_site_refused("POST", {"sec-fetch-site": site}, NONE)
    assert not cross_site_refused("POST", {"sec-fetch-site": "same-origin"}, NONE)


TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: header ignored
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        # The client forged a first hop; the proxy appended what it saw.
        ("10.1.2.3", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # Two proxies of ours in a row.
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.9.9.9", "198.51.100.1"),
        # Garbage stops the walk: trust nothing left of it.
        ("10.1.2.3", "198.51.100.1, not-an-ip", "10.1.2.3"),
        ("10.1.2.3", "[2001:db8::7]:443", "2001:db8::7"),
    ],
)
def test_client_address_behind_trusted_proxies(peer: str, forwarded: str, client: str) -> None:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    assert client_address(peer, headers, TRUSTED) == client


def test_no_trusted_proxy_means_the_peer() -> None:
    assert client_address("127.0.0.1", {"x-forwarded-for": "1.2.3.4"}, ()) == "127.0.0.1"


def test_ipv6_clients_are_throttled_by_their_64() -> None:
    assert throttle_subject("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert throttle_subject("::ffff:198.51.100.1") == "198.51.100.1"
    assert throttle_subject("198.51.100.1") == "198.51.100.1"


def test_bad_proxy_settings_are_refused_at_start_up() -> None:
    from gateway.config import GatewaySettings

    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        GatewaySettings(trusted_proxies="10.0.0.0/8, nonsense")
    with pytest.raises(ValueError, match="not an origin"):
        GatewaySettings(allowed_origins="chat.example.com")
    ok = GatewaySettings(allowed_origins="https://a.example, http://b.example:8080")
    assert ok.allowed_origins == ["https://a.example", "http://b.example:8080"]
