"""The security middleware in process (ASGI): oversized bodies refused
before they are read whole, cross-site writes refused, headers on every
answer. The running gateway is covered end to end in tests/e2e."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from gateway.errors import install_handlers
from gateway.security.middleware import CONTENT_SECURITY_POLICY, SecurityMiddleware, SecurityPolicy


def make_app(**policy: Any) -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    install_handlers(app)
    read: list[int] = []

    @app.post("/api/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        read.append(len(body))
        return {"bytes": len(body)}

    @app.post("/api/conversations/import")
    async def big(payload: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(payload)}

    @app.get("/page")
    async def page() -> PlainTextResponse:
        return PlainTextResponse("hi", headers={"x-frame-options": "SAMEORIGIN"})

    settings = {
        "max_request_bytes": 1000,
        "route_limits": {"/api/conversations/import": 5000},
        **policy,
    }
    app.add_middleware(SecurityMiddleware, policy=SecurityPolicy(**settings))
    return app, read


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


async def chunks(n: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield b"x" * size


async def test_a_declared_length_past_the_limit_is_refused_unread() -> None:
    app, read = make_app()
    async with client(app) as http:
        r = await http.post("/api/echo", content=b"x" * 1001)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        assert read == []  # the route never ran
        assert (await http.post("/api/echo", content=b"x" * 1000)).json() == {"bytes": 1000}


async def test_a_streamed_body_is_cut_off_once_past_the_limit() -> None:
    app, read = make_app()
    async with client(app) as http:
        r = await http.post("/api/echo", content=chunks(50, 100))
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        assert read == []
        assert (await http.post("/api/echo", content=chunks(9, 100))).json() == {"bytes": 900}


async def test_limits_are_per_route() -> None:
    app, _ = make_app()
    async with client(app) as http:
        body = {"a": "y" * 3000}
        assert (await http.post("/api/conversations/import", json=body)).status_code == 200
        assert (await http.post("/api/echo", json=body)).status_code == 413
        too_big = {"a": "y" * 6000}
        assert (await http.post("/api/conversations/import", json=too_big)).status_code == 413
        r = await http.post("/api/auth/login", content=b"z" * 20_000)
        assert r.status_code == 413  # sign-in bodies are small


async def test_every_answer_carries_the_security_headers() -> None:
    app, _ = make_app()
    async with client(app) as http:
        for r in (
            await http.get("/page"),
            await http.get("/nowhere"),
            await http.post("/api/echo", content=b"x" * 5000),
        ):
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert r.headers["x-frame-options"] == "DENY"  # not the route's own
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "strict-transport-security" not in r.headers
    app, _ = make_app(hsts=True)
    async with client(app) as http:
        r = await http.get("/page")
        assert r.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "http://gw.test"}, 200),
        ({"Origin": "https://app.example"}, 200),  # listed in the setting
        ({"Origin": "https://evil.example", "Authorization": "Bearer t"}, 200),
        ({}, 200),
    ],
)
async def test_cross_site_writes_are_refused(headers: dict[str, str], status: int) -> None:
    app, read = make_app(allowed_origins=frozenset({"https://app.example"}))
    async with client(app) as http:
        r = await http.post("/api/echo", content=b"{}", headers=headers)
        assert r.status_code == status
        if status == 403:
            assert r.json()["error"]["code"] == "forbidden" and read == []
