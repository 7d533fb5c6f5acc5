"""No token, cookie, password or session id in any log line: a whole stack
(gateway and worker) logging at DEBUG does everything a user does with
secrets, then every line its processes wrote is searched for them. (What
the calls answer is other tests' business: this one only reads the logs.)"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.stack import Stack, running_stack
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e


def read_logs(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in directory.glob("*.log")}


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("logged")
    with running_stack(redis_url, directory, workers=1, env={"TIDECHAT_LOG_LEVEL": "debug"}) as s:
        yield s


async def test_no_secret_reaches_a_log_line(stack: Stack) -> None:
    secrets: dict[str, str] = {}
    base = stack.url
    name = f"logged{uuid.uuid4().hex[:6]}"
    secrets["password"] = "hunter2 but longer " + uuid.uuid4().hex
    secrets["new password"] = "another secret " + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post(
            "/api/auth/signup", json={"username": name, "password": secrets["password"]}
        )
        secrets["signup token"] = r.json()["token"]
        secrets["cookie"] = r.cookies["tc_session"]
        secrets["wrong password"] = "a wrong one " + uuid.uuid4().hex
        await http.post(
            "/api/auth/login", json={"username": name, "password": secrets["wrong password"]}
        )
        r = await http.post(
            "/api/auth/login", json={"username": name, "password": secrets["password"]}
        )
        token = secrets["login token"] = r.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        # Scripts' way (query string) and the web client's (subprotocol).
        secrets["query session"] = f"qs{uuid.uuid4().hex}"
        secrets["protocol session"] = f"sp{uuid.uuid4().hex}"
        sock = await ChatSocket.connect(stack.ws_url, token, session=secrets["query session"])
        await sock.send({"type": "message", "content": "hello"})
        await sock.wait_type("stream_end")
        await sock.close()
        sock = await ChatSocket.connect(
            stack.ws_url,
            None,
            cookie=secrets["cookie"],
            origin=base,
            session_protocol=secrets["protocol session"],
        )
        await sock.wait_type("hello")
        await sock.close()
        # Someone else presenting the session: refused (and logged, if at all, without it).
        other = (
            await http.post(
                "/api/auth/signup",
                json={"username": f"o{uuid.uuid4().hex[:8]}", "password": "other password"},
            )
        ).json()["token"]
        secrets["other token"] = other
        sock = await ChatSocket.connect(stack.ws_url, other, session=secrets["query session"])
        with contextlib.suppress(TimeoutError):  # refused (a server that leaks would not)
            await asyncio.wait_for(sock.closed.wait(), 5)
        await sock.close()
        r = await http.post("/api/chat", json={"content": "by SSE"}, headers=auth)
        r = await http.post(
            "/api/auth/password",
            json={
                "current_password": secrets["password"],
                "new_password": secrets["new password"],
            },
            headers=auth,
        )
        # A bad token, as a header and as a cookie, on HTTP and on the socket.
        secrets["bad token"] = "forged-" + uuid.uuid4().hex
        await http.get("/api/auth/me", headers={"Authorization": f"Bearer {secrets['bad token']}"})
        with contextlib.suppress(Exception):
            bad = await ChatSocket.connect(stack.ws_url, secrets["bad token"])
            await asyncio.wait_for(bad.closed.wait(), 10)
            await bad.close()
        await http.post("/api/auth/logout", headers=auth)
    stack.stop()  # its shutdown is logged too
    logs = read_logs(stack.directory)
    assert logs and any("DEBUG" in text for text in logs.values()), "nothing was logged at DEBUG"
    for what, value in secrets.items():
        for file, text in logs.items():
            # A prefix too: libraries cut long values short ("abc123...").
            assert value[:16] not in text, f"the {what} is in {file}"
    # The redaction is visible where a secret would have been.
    assert any("[redacted]" in text for text in logs.values())
