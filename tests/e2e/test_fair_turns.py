"""One user's queue cannot stand in front of everyone else's (issue 18,
finding 5: a user who queued 30 slow turns made another user's reply from
an instant model wait 110.7 s instead of ~3 ms; a few accounts could fill
the pool's 1,000-turn cap and everyone got ``busy``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import unique
from tests.support.stack import OPERATOR, Stack, running_stack, scripted_models
from tests.support.ws import ChatSocket

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: ~1 s a reply, two at a time (one worker, concurrency 2 = each user's share).
MODELS = scripted_models(tokens_per_second=10, reply_tokens=10)
WAITING_CAP = 40


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"TIDECHAT_MAX_WAITING_TURNS_PER_USER": str(WAITING_CAP)}
    with running_stack(
        redis_url,
        tmp_path_factory.mktemp("fair"),
        models=MODELS,
        workers=1,
        worker_args=("--concurrency", "2"),
        env=env,
    ) as s:
        yield s


async def queue_turns(sock: ChatSocket, count: int, tag: str) -> list[dict[str, Any]]:
    """Send ``count`` messages (each a new conversation); their acknowledgements."""
    for i in range(count):
        await sock.send({"type": "message", "content": f"{tag} {i}", "client_id": f"{tag}{i}"})
    acks = []
    for i in range(count):
        acks.append(
            await sock.wait_for(
                lambda f, i=i: (
                    f.get("client_id") == f"{tag}{i}" and f["type"] in ("user_message", "error")
                )
            )
        )
    return acks


def ended(sock: ChatSocket) -> int:
    return sum(1 for f in sock.frames if f["type"] == "stream_end")


async def test_thirty_queued_slow_turns_delay_another_user_by_at_most_one_turn(
    stack: Stack,
) -> None:
    attacker = await ChatSocket.connect(stack.ws_url, stack.signup(unique("hog")))
    bystander = await ChatSocket.connect(stack.ws_url, stack.signup(unique("by")))
    await attacker.wait_type("hello")
    await bystander.wait_type("hello")
    acks = await queue_turns(attacker, 30, "hog")
    assert all(a["type"] == "user_message" for a in acks)
    ended_before = ended(attacker)
    asked = time.monotonic()
    await bystander.send({"type": "message", "content": "just one question"})
    await bystander.wait_type("stream_chunk", timeout=60)
    first_token_s = time.monotonic() - asked
    ended_meanwhile = ended(attacker) - ended_before
    print(
        f"\nbystander's first token after {first_token_s:.2f} s, behind {ended_meanwhile} of "
        f"the attacker's 30 turns (a turn takes ~1 s)"
    )
    # Two of the attacker's turns run when the bystander asks (their share);
    # the first to finish hands its slot to the bystander's turn, next on the
    # stream, and the attacker's next one joins the back.
    assert ended_meanwhile <= 2
    assert ended(attacker) < 10  # the attack was still running
    # /ready (for the operator) counts the turns waiting in lines.
    async with httpx.AsyncClient(base_url=stack.url, headers=OPERATOR) as http:
        pool = (await http.get("/ready")).json()["pools"]["default"]
    assert pool["waiting"] >= 15 and pool["waiting_users"] == 1
    await attacker.close()
    await bystander.close()


async def test_a_turn_stopped_while_it_waits_in_line_ends_at_once(stack: Stack) -> None:
    token = stack.signup(unique("stopper"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.wait_type("hello")
    acks = await queue_turns(sock, 6, "line")
    waiting = acks[5]["turn_id"]  # behind four of the user's own turns
    await sock.send({"type": "stop", "turn_id": waiting})
    end = await sock.wait_type("stream_end", turn_id=waiting, timeout=60)
    assert end["message"]["finish_reason"] == "stopped"
    # Ended before the user's earlier turns, not after them.
    earlier = {a["turn_id"] for a in acks[:5]}
    done_first = [f for f in sock.frames if f["type"] == "stream_end" and f["turn_id"] in earlier]
    assert len(done_first) < 4
    with stack.client(token) as http:
        conv = http.get(f"/api/conversations/{end['conversation_id']}").json()
    assert conv["messages"][waiting]["finish_reason"] == "stopped"
    # The rest of the line still completes, each once.
    for ack in acks[:5]:
        await sock.wait_type("stream_end", turn_id=ack["turn_id"], timeout=60)
    ends = [f["turn_id"] for f in sock.frames if f["type"] == "stream_end"]
    assert sorted(ends) == sorted(a["turn_id"] for a in acks)
    await sock.close()


async def test_a_user_past_their_waiting_cap_gets_busy_and_others_do_not(stack: Stack) -> None:
    hog = await ChatSocket.connect(stack.ws_url, stack.signup(unique("cap")))
    other = await ChatSocket.connect(stack.ws_url, stack.signup(unique("free")))
    await hog.wait_type("hello")
    await other.wait_type("hello")
    acks = await queue_turns(hog, WAITING_CAP + 6, "cap")
    refused = [a for a in acks if a["type"] == "error"]
    assert refused and all(a["code"] == "busy" for a in refused)
    assert "waiting" in refused[0]["message"]
    assert len(acks) - len(refused) <= WAITING_CAP + 2 + 1  # share + line (+ one in flight)
    (ack,) = await queue_turns(other, 1, "free")
    assert ack["type"] == "user_message"
    # Stop the hog's turns so the module's stack is quiet for whoever is next.
    for a in acks:
        if a["type"] == "user_message":
            await hog.send({"type": "stop", "turn_id": a["turn_id"]})
    await asyncio.gather(hog.close(), other.close())
