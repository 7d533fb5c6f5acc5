"""The operator commands (``tidechat replay``, ``streams``, ``dead``) against
real Redis; the ones about chats against a real stack (gateway + worker
processes, scripted model), driven through ``tidechat.cli.main``.

The stack lives for the whole module, so nothing here flushes Redis: the
tests that need a keyspace of their own use their own key prefix.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
from redis.asyncio import Redis

from shared.conversation import Conversation, Message, new_id
from shared.keys import WORKER_GROUP, Keys
from shared.redis_client import make_redis
from shared.store import ConversationStore, codec
from shared.streams import DeadLetter, TurnRequest, encode_turn
from tests.support.keys import KEYS
from tests.support.stack import OPERATOR, Stack, running_stack, scripted_models
from tests.support.ws import ChatSocket
from tidechat.cli import main
from tidechat.local_redis import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A reply paced over ~150 ms, so it streams in several chunks.
    models = scripted_models(reply_tokens=24, tokens_per_second=160)
    with running_stack(redis_url, tmp_path_factory.mktemp("ops"), models=models, workers=1) as s:
        yield s


@pytest.fixture
def ops_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The commands see what the stack's processes see."""
    monkeypatch.setenv("REDIS_URL", stack.redis_url)
    monkeypatch.setenv("TIDECHAT_MODELS", stack.env["TIDECHAT_MODELS"])
    return stack


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[Redis]:
    """A client that does not flush: the stack's data must survive."""
    client = make_redis(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def own_prefix(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Keys, redis_sync.Redis]]:
    """A keyspace of the test's own (no worker serves it) and a models file
    with two pools."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    models = tmp_path / "models.toml"
    models.write_text(
        scripted_models() + '\n[[models]]\nid = "big"\nbackend = "scripted"\npool = "gpu"\n'
    )
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TIDECHAT_MODELS", str(models))
    monkeypatch.setenv("TIDECHAT_KEY_PREFIX", prefix)
    client = redis_sync.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield Keys(prefix), client
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


def run_sync(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``tidechat ARGS`` in a thread (it runs its own event loop)."""
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def chat(stack: Stack, content: str) -> tuple[ChatSocket, str, dict[str, Any]]:
    """A new conversation with one question answered: (socket, session id, stream_end)."""
    sid = f"s{uuid.uuid4().hex[:12]}"
    sock = await ChatSocket.connect(stack.ws_url, stack.signup(f"u{uuid.uuid4().hex[:8]}"), sid)
    await sock.wait_type("hello")
    await sock.send({"type": "message", "content": content})
    end = await sock.wait_type("stream_end")
    await sock.wait_type("title")  # the last event of a first turn
    return sock, sid, end


def timeline_rows(out: str) -> list[list[str]]:
    """The event lines of a timeline, split into time, (delta,) id, type, turn, size, text."""
    rows = []
    for line in out.splitlines():
        m = re.match(
            r"^(\d\d:\d\d:\d\d\.\d{3}) +(\+\d+\.\d{3})? +(\d+-\d+) +(\S+) +(\S+) +(\d+)B (.*)$",
            line,
        )
        if m:
            rows.append(list(m.groups()))
    return rows


# --- replay session ---------------------------------------------------------------


async def test_session_timeline_shows_what_the_client_got_in_order(
    ops_env: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    sock, sid, end = await chat(ops_env, "What is a tide?\nTell me")
    code, out, _ = await run(capsys, "replay", "session", sid, "--full")
    await sock.close()
    assert code == 0
    rows = timeline_rows(out)
    streamed = [f for f in sock.frames if "event_id" in f]
    # One line per event the client received, same ids, same order, same types.
    assert [row[2] for row in rows] == [f["event_id"] for f in streamed]
    assert [row[3] for row in rows] == [f["type"] for f in streamed]
    types = [row[3] for row in rows]
    assert types[:3] == ["conversation_created", "user_message", "stream_start"]
    assert types[-2:] == ["stream_end", "title"]
    assert set(types[3:-2]) == {"stream_chunk"}
    by_type = {row[3]: row for row in rows}
    assert by_type["user_message"][6] == r'"What is a tide?\nTell me"'
    assert by_type["stream_start"][4] == end["turn_id"][:8]
    chunks = [row[6] for row in rows if row[3] == "stream_chunk"]
    assert chunks == [json.dumps(f["chunk"]) for f in streamed if f["type"] == "stream_chunk"]
    assert by_type["stream_end"][6].startswith("[stop, ")
    assert by_type["stream_end"][6].endswith(json.dumps(end["message"]["content"]))
    assert by_type["title"][6] == '"What is a tide? Tell me"'
    # the size is that of the stored event JSON
    assert all(int(row[5]) > 50 for row in rows)
    assert f"session {sid}: {len(rows)} events; expires in" in out


async def test_from_skips_earlier_events_and_follow_prints_new_ones(
    ops_env: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    sock, sid, end = await chat(ops_env, "first")
    start = next(f["event_id"] for f in sock.frames if f["type"] == "stream_start")
    code, out, _ = await run(capsys, "replay", "session", sid, "--from", start)
    assert code == 0
    types = [row[3] for row in timeline_rows(out)]
    assert types[0] == "stream_start" and "user_message" not in types
    assert f"from {start}" in out
    # A bare millisecond time works too (Redis fills in the sequence).
    ms = start.split("-")[0]
    code, out, _ = await run(capsys, "replay", "session", sid, "--from", ms)
    rows = timeline_rows(out)
    assert code == 0
    assert "stream_start" in [row[3] for row in rows]
    # everything from that millisecond on (an earlier event may share it), nothing before
    assert all(int(row[2].split("-")[0]) >= int(ms) for row in rows)
    all_rows = timeline_rows((await run(capsys, "replay", "session", sid))[1])
    assert len(rows) == sum(int(row[2].split("-")[0]) >= int(ms) for row in all_rows)

    # --follow, as a user runs it: old events, then new ones as they come, until Ctrl-C.
    follow = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tidechat.cli",
        "replay",
        "session",
        sid,
        "--follow",
        "--json",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert follow.stdout is not None and follow.stderr is not None
    try:
        async with asyncio.timeout(20):
            assert b"following" in await follow.stderr.readline()
            await sock.send(
                {"type": "message", "content": "second", "conversation_id": end["conversation_id"]}
            )
            second_end = await sock.wait_for(
                lambda f: f["type"] == "stream_end" and f["turn_id"] != end["turn_id"]
            )
            printed = []
            while not printed or printed[-1]["event_id"] != second_end["event_id"]:
                printed.append(json.loads(await follow.stdout.readline()))
            # every frame, old and new, exactly as the client got it
            assert printed == [f for f in sock.frames if "event_id" in f]
            follow.send_signal(signal.SIGINT)
            assert await follow.wait() == 130
            assert b"Traceback" not in await follow.stderr.read()
    finally:
        await sock.close()
        if follow.returncode is None:
            follow.kill()
            await follow.wait()


def test_unknown_session_and_bad_from(
    own_prefix: tuple[Keys, redis_sync.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_sync(capsys, "replay", "session", "no-such-session")
    assert code == 1 and out == ""
    assert "session 'no-such-session' not found" in err and "expired" in err
    keys, client = own_prefix
    client.xadd(keys.session("s1"), {"t": "title", "d": '{"type":"title","title":"x"}'})
    code, _, err = run_sync(capsys, "replay", "session", "s1", "--from", "yesterday")
    assert code == 1 and "is not an event id" in err


# --- replay turn ------------------------------------------------------------------


async def test_replay_turn_reruns_it_beside_the_recorded_one(
    ops_env: Stack, r: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    sock, _sid, end = await chat(ops_env, "Why is the sea salty?")
    await sock.close()
    turn_id, cid = end["turn_id"], end["conversation_id"]
    store = ConversationStore(r, KEYS)
    before = await store.get(cid)

    code, out, err = await run(capsys, "replay", "turn", turn_id[:8], "--timeout", "20")
    assert code == 0, err
    recorded = end["message"]["content"]
    assert recorded.startswith("You said: Why is the sea salty?")
    # Both replies printed; the scripted model is deterministic, so they match.
    blocks = re.split(r"^---.*$", out, flags=re.M)
    assert blocks[1].strip() == recorded and blocks[2].strip() == recorded
    assert "same text: yes" in out
    assert re.search(r"^finish +stop +stop$", out, re.M)
    assert "picked up" in err and "done in" in err

    # The replay ran in a throw-away copy: the user's conversation is as it was.
    assert await store.get(cid) == before
    copy_id = re.search(r"conversation copy (\w+)", out)[1]  # type: ignore[index]
    replay_turn = re.search(r"^turn +\w+ +(\w+)$", out, re.M)[1]  # type: ignore[index]
    copy = await store.get(copy_id)
    assert copy is not None and before is not None
    assert await r.hget(KEYS.conversation(copy_id), "rp") == cid
    assert copy.messages[replay_turn].content == recorded
    # Every key of the copy expires, the reply the worker stored included.
    for key in (
        KEYS.conversation(copy_id),
        KEYS.tree(copy_id),
        *(KEYS.message(copy_id, mid) for mid in copy.messages),
    ):
        assert 0 < await r.ttl(key) <= 3600, key
    owner = copy.owner
    assert await r.zscore(KEYS.user_conversations(owner), copy_id) is None
    assert [s.id for s in (await store.list_for_user(owner))[0]] == [cid]
    # ...and its own session holds an ordinary turn's timeline.
    sid = re.search(r"tidechat replay session (\S+)\)", out)[1]  # type: ignore[index]
    code, out, _ = await run(capsys, "replay", "session", sid)
    types = [row[3] for row in timeline_rows(out)]
    assert types[:2] == ["user_message", "stream_start"] and types[-1] == "stream_end"


def test_unknown_turn(
    own_prefix: tuple[Keys, redis_sync.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_sync(capsys, "replay", "turn", "0123456789abcdef")
    assert code == 1
    assert "turn 0123456789abcdef not found on the prompt or dead-letter streams" in err
    code, _, err = run_sync(capsys, "replay", "turn", "abc")
    assert code == 1 and "is not a turn id" in err


def test_replay_turn_with_no_worker_times_out_and_stops_the_replay(
    own_prefix: tuple[Keys, redis_sync.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    keys, client = own_prefix
    question = Message(id="m1", role="user", content="hi", created_at=1.0)
    conv = Conversation(
        id="c1",
        owner="u1",
        title="t",
        model="scripted",
        created_at=1.0,
        updated_at=1.0,
        current_id="m1",
        messages={"m1": question},
    )
    client.hset(keys.message("c1", "m1"), mapping=codec.message_fields(question, "u1"))
    client.hset(keys.tree("c1"), mapping={"^": "m1", ".cur": "m1", ".ua": "1.0", ".n": 1})
    client.hset(keys.conversation("c1"), mapping=codec.conversation_fields(conv))
    old = _turn()
    client.xadd(keys.prompts("default"), encode_turn(old))
    code, out, err = run_sync(capsys, "replay", "turn", old.turn_id, "--timeout", "0.5")
    assert code == 1 and out == ""
    assert "no live worker: start one (tidechat worker --pool default)" in err
    assert "no reply within 0.5s (0 live worker(s) in pool default" in err
    # The replay was asked to stop, by its own user, as the Stop button does.
    [replayed] = [
        TurnRequest.model_validate_json(f["d"])
        for _, f in client.xrange(keys.prompts("default"))
        if old.turn_id not in f["d"]
    ]
    assert client.get(keys.cancel(replayed.turn_id)) == "u1"
    assert replayed.conversation_id != "c1" and replayed.parent_id == "m1"


# --- streams ----------------------------------------------------------------------


def _turn(**fields: Any) -> TurnRequest:
    return TurnRequest(
        turn_id=new_id(),
        session_id="s1",
        user_id="u1",
        conversation_id="c1",
        parent_id="m1",
        model="scripted",
        **fields,
    )


def test_streams_shows_lag_pending_per_consumer_workers_and_dead_letters(
    own_prefix: tuple[Keys, redis_sync.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    keys, client = own_prefix
    stream = keys.prompts("default")
    client.xgroup_create(stream, WORKER_GROUP, id="0", mkstream=True)
    turns = [_turn() for _ in range(3)]
    ids = [client.xadd(stream, encode_turn(t)) for t in turns]
    # A worker that read one turn and stopped: its entry stays pending, idle.
    client.xreadgroup(WORKER_GROUP, "gone-worker", {stream: ">"}, count=1)
    client.xclaim(stream, WORKER_GROUP, "gone-worker", 0, [ids[0]], idle=42_000, justid=True)
    # A live worker (heartbeat now) holding nothing.
    client.zadd(keys.workers("default"), {"live-worker": client.time()[0] * 1000})
    letter = DeadLetter(
        turn=_turn(), code="backend_unavailable", error="upstream 503 after 3 tries", deliveries=1
    )
    dead_id = client.xadd(keys.dead("default"), {"d": letter.model_dump_json()})
    client.hincrby(keys.metrics("default"), "takeovers", 2)
    # A pool no model names any more still shows (found by SCAN).
    client.xadd(keys.prompts("retired"), encode_turn(_turn()))

    code, out, _ = run_sync(capsys, "streams", "--json")
    assert code == 0
    pools = {p["pool"]: p for p in json.loads(out)["pools"]}
    assert set(pools) == {"default", "gpu", "retired"}
    p = pools["default"]
    assert (p["length"], p["queued"], p["pending"]) == (3, 2, 1)
    assert p["live_workers"] == 1 and p["workers"][0]["name"] == "live-worker"
    [consumer] = p["consumers"]
    assert consumer["name"] == "gone-worker" and consumer["live"] is False
    assert consumer["pending"] == 1 and 42 <= consumer["max_idle_seconds"] < 60
    assert consumer["entries"][0]["entry_id"] == ids[0]
    assert consumer["entries"][0]["turn_id"] == turns[0].turn_id
    assert p["dead_letters"] == 1 and p["takeovers"] == 2
    assert p["newest_dead_letters"][0]["entry_id"] == dead_id
    assert p["newest_dead_letters"][0]["error"] == "upstream 503 after 3 tries"
    # no worker ever joined "retired": everything on it is waiting
    assert pools["retired"]["queued"] == 1 and pools["gpu"]["length"] == 0

    code, out, _ = run_sync(capsys, "streams")
    assert code == 0
    assert "3 entries; 2 waiting for a worker (group lag); 1 being generated" in out
    assert re.search(r"gone-worker  1 pending, longest idle 4\d\.\ds.*NO HEARTBEAT", out)
    assert re.search(rf"{ids[0]}  turn {turns[0].turn_id}  idle 4\d\.\ds  delivered 1x", out)
    assert "1 live  live-worker" in out
    assert 'backend_unavailable: "upstream 503 after 3 tries"' in out
    assert "pool retired" in out and "pool gpu" in out


async def test_ready_and_metrics_show_pending_per_consumer(
    ops_env: Stack, r: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = KEYS.prompts("default")
    # Delivered to a fake consumer in the same transaction as it is queued,
    # so the stack's worker never sees it.
    pipe = r.pipeline(transaction=True)
    pipe.xadd(stream, encode_turn(_turn()))
    pipe.xreadgroup(WORKER_GROUP, "fake-consumer", {stream: ">"}, count=1)
    entry_id, _ = await pipe.execute()
    try:
        async with httpx.AsyncClient(base_url=ops_env.url, headers=OPERATOR) as http:
            ready = (await http.get("/ready")).json()
            metrics = (await http.get("/metrics")).text
        assert ready["pools"]["default"]["consumers"]["fake-consumer"]["pending"] == 1
        assert "resumes" in ready
        assert 'tidechat_pool_consumer_pending{pool="default",consumer="fake-consumer"} 1' in (
            metrics
        )
        assert (
            'tidechat_pool_consumer_max_idle_seconds{pool="default",consumer="fake-consumer"}'
            in (metrics)
        )
        code, out, _ = await run(capsys, "streams", "--json")
        assert code == 0
        pool = next(p for p in json.loads(out)["pools"] if p["pool"] == "default")
        assert any(c["name"] == "fake-consumer" for c in pool["consumers"])
        assert pool["pending"] == ready["pools"]["default"]["pending"] >= 1
    finally:
        await r.xack(stream, WORKER_GROUP, entry_id)
        await r.xdel(stream, entry_id)
        await r.xgroup_delconsumer(stream, WORKER_GROUP, "fake-consumer")


# --- dead letters -------------------------------------------------------------------


async def test_dead_retry_requeues_a_poison_turn_and_a_worker_completes_it(
    ops_env: Stack, r: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    sock, sid, end = await chat(ops_env, "Is this turn cursed?")
    owner = await r.hget(KEYS.conversation(end["conversation_id"]), "o")
    turn = TurnRequest(
        turn_id=new_id(),
        kind="regenerate",
        session_id=sid,
        user_id=str(owner),
        conversation_id=end["conversation_id"],
        parent_id=end["message"]["parent_id"],
        model="scripted",
    )
    # A turn whose workers "kept dying": delivered to a consumer that never
    # answers (in the transaction that queues it, so the live worker cannot
    # get it first), with a delivery count past the limit and a long idle
    # time, so the live worker's claim loop takes it over and dead-letters it.
    stream = KEYS.prompts("default")
    pipe = r.pipeline(transaction=True)
    pipe.xadd(stream, encode_turn(turn))
    pipe.xreadgroup(WORKER_GROUP, "doomed-consumer", {stream: ">"}, count=1)
    entry_id, _ = await pipe.execute()
    await r.xclaim(
        stream, WORKER_GROUP, "doomed-consumer", 0, [entry_id], idle=3_600_000, retrycount=10
    )
    error = await sock.wait_type("error", turn_id=turn.turn_id)
    assert error["code"] == "internal"
    await sock.wait_type("stream_end", turn_id=turn.turn_id)

    code, out, _ = await run(capsys, "dead", "list")
    assert code == 0
    dead_id = re.search(rf"^default  (\d+-\d+) .* turn {turn.turn_id} ", out, re.M)[1]  # type: ignore[index]
    assert "internal:" in out and f"conversation {turn.conversation_id}" in out

    mark = len(sock.frames)
    code, out, err = await run(capsys, "dead", "retry", dead_id)
    assert code == 0, err
    assert (
        f"requeued turn {turn.turn_id} (model scripted) on tc:prompts:{{default}} as entry" in out
    )
    assert "removed the failed reply" in out and f"the reply streams to session {sid}" in out
    done = await sock.wait_for(
        lambda f: f["type"] == "stream_end" and f["turn_id"] == turn.turn_id, start=mark
    )
    assert done["message"]["finish_reason"] == "stop"
    assert done["message"]["content"] == end["message"]["content"]  # same question, same text
    store = ConversationStore(r, KEYS)
    conv = await store.get(turn.conversation_id)
    assert conv is not None
    replies = [m for m in conv.messages.values() if m.parent_id == turn.parent_id]
    assert [(m.id, m.finish_reason) for m in replies if m.id == turn.turn_id] == [
        (turn.turn_id, "stop")
    ]
    assert not await r.xrange(KEYS.dead("default"), dead_id, dead_id)
    await sock.close()

    code, _, err = await run(capsys, "dead", "retry", dead_id)
    assert code == 1 and f"no dead letter {dead_id}" in err


def test_dead_errors_and_malformed_letters(
    own_prefix: tuple[Keys, redis_sync.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    keys, client = own_prefix
    code, out, _ = run_sync(capsys, "dead", "list")
    assert code == 0 and out == "no dead letters in default, gpu\n"
    code, _, err = run_sync(capsys, "dead", "retry", "not-an-id")
    assert code == 1 and "is not a stream entry id" in err
    # A letter for a prompt-stream entry that was not a turn, as workers write it...
    letter = DeadLetter(
        turn=None, code="bad_request", error="not a turn: no field d", deliveries=1, raw="{...}"
    )
    bad = client.xadd(keys.dead("gpu"), {"d": letter.model_dump_json()})
    # ...and one in the shape the previous release wrote.
    old = client.xadd(keys.dead("gpu"), {"malformed": "{...}", "error": "no field e"})
    code, out, _ = run_sync(capsys, "dead", "list", "--pool", "gpu")
    assert f"gpu  {bad}" in out and "malformed: not a turn: no field d" in out
    assert f"gpu  {old}" in out and "malformed: no field e" in out
    for entry in (bad, old):
        code, _, err = run_sync(capsys, "dead", "retry", entry, "--pool", "gpu")
        assert code == 1 and "is not a turn" in err


def test_unreachable_redis_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("TIDECHAT_MODELS", "")
    code, out, err = run_sync(capsys, "streams")
    assert code == 1 and out == ""
    assert f"cannot reach Redis at {url.replace('hunter2', '***')}" in err
    assert "hunter2" not in err


def test_redis_url_wins_over_the_address_tidechat_up_recorded(
    own_prefix: tuple[Keys, redis_sync.Redis],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tidechat.local_redis import record_url

    data = tmp_path / "data"
    monkeypatch.setenv("TIDECHAT_DATA_DIR", str(data))
    real = os.environ["REDIS_URL"]
    record_url(data, f"redis://127.0.0.1:{free_port()}/0")  # an `up` that is gone
    code, out, err = run_sync(capsys, "streams")
    assert code == 0, err  # REDIS_URL is set: the recorded address is not used
    monkeypatch.delenv("REDIS_URL")
    code, out, err = run_sync(capsys, "streams")
    assert code == 1 and "the address tidechat up recorded in" in err
    assert "is it still running?" in err
    record_url(data, real)
    code, out, err = run_sync(capsys, "streams")
    assert code == 0, err
    assert "pool default" in out
