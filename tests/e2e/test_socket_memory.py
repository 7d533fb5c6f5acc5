"""Sockets that never read cannot pin the gateway's memory or stay open
(issue 18, finding 2: 60 such sockets sending 20 ``resume`` frames each
took the gateway from 858 to 1,728 MB, and were still open 90 s later)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.deaf import DeafSocket
from tests.e2e.conftest import unique
from tests.support.stack import OPERATOR, Stack, running_stack, scripted_models
from tests.support.ws import ChatSocket

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BUDGET = 262_144
WRITE_TIMEOUT_S = 3
DEAF = 20
RESUMES = 10
TURNS = 100
#: A long message: each turn's events weigh ~30 KB, the session ~3 MB.
LONG = "tide " * 6_000


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "TIDECHAT_SOCKET_BUFFER_BYTES": str(BUDGET),
        "TIDECHAT_SOCKET_WRITE_TIMEOUT_SECONDS": str(WRITE_TIMEOUT_S),
    }
    with running_stack(
        redis_url, tmp_path_factory.mktemp("deaf"), models=scripted_models(), env=env, workers=1
    ) as s:
        yield s


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def open_sockets(stack: Stack) -> int:
    async with httpx.AsyncClient(base_url=stack.url, headers=OPERATOR, timeout=10) as http:
        text = (await http.get("/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("tidechat_gateway_sockets "))
    return int(float(line.split()[1]))


async def long_session(stack: Stack, token: str, session: str) -> list[str]:
    """Fill a session with TURNS turns of long messages; return its event ids."""
    sock = await ChatSocket.connect(stack.ws_url, token, session=session)
    await sock.wait_type("hello")
    cid = None
    for i in range(TURNS):
        start = len(sock.frames)
        await sock.send({"type": "message", "content": f"{i} {LONG}", "conversation_id": cid})
        end = await sock.wait_for(lambda f: f["type"] == "stream_end", start=start)
        cid = end["conversation_id"]
    ids = sock.event_ids()
    await sock.close()
    return ids


async def test_deaf_sockets_resuming_a_long_session_hold_bounded_memory_and_are_dropped(
    stack: Stack,
) -> None:
    token = stack.signup(unique("deaf"))
    session = unique("deafsession")
    events = await long_session(stack, token, session)
    bystander = await ChatSocket.connect(stack.ws_url, stack.signup(unique("by")))
    await bystander.wait_type("hello")
    pid = stack.gateways[0].popen.pid
    before = rss_mb(pid)

    attackers = [DeafSocket(stack.ws_url, token, session) for _ in range(DEAF)]
    attack_started = time.monotonic()
    for _ in range(RESUMES):
        for deaf in attackers:
            deaf.send({"type": "resume", "after": "0-0"})
            deaf.send({"type": "ping"})
    peak = before
    # The bystander chats while the attack runs.
    start = len(bystander.frames)
    asked = time.monotonic()
    await bystander.send({"type": "message", "content": "anyone there?"})
    await bystander.wait_for(lambda f: f["type"] == "stream_end", start=start, timeout=30)
    bystander_s = time.monotonic() - asked
    # Every deaf socket is dropped once its writes have waited the timeout.
    async with asyncio.timeout(60):
        while await open_sockets(stack) > 1:
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.2)
    dropped_after = time.monotonic() - attack_started
    peak = max(peak, rss_mb(pid))
    print(
        f"\ngateway RSS {before:.0f} MB -> peak {peak:.0f} MB under {DEAF} deaf sockets x "
        f"{RESUMES} resumes of a {len(events)}-event session; dropped after {dropped_after:.1f} s; "
        f"bystander's turn took {bystander_s:.2f} s"
    )
    for deaf in attackers:
        deaf.close()
    assert peak - before < 80, f"the gateway grew by {peak - before:.0f} MB"
    assert bystander_s < 10

    # A client that reads again resumes the whole session.
    back = await ChatSocket.connect(stack.ws_url, token, session=session)
    await back.wait_type("hello")
    await back.send({"type": "resume", "after": "0-0"})
    await back.wait_for(lambda f: f.get("event_id") == events[-1], timeout=30)
    assert back.event_ids()[: len(events)] == events
    await back.close()
    await bystander.close()
