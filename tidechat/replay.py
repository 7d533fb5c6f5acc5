"""``tidechat replay turn``: run a recorded turn again on today's workers, and
put the new reply beside the recorded one.

The replay runs in a throw-away copy of the conversation, not in the user's
own: the copy holds the branch that led to the question (same message ids,
same system prompt, same owner, so the worker builds the same prompt) and
nothing else, lives ``--keep`` seconds, and is not in the owner's
conversation list. A replay in the original conversation would add a sibling
reply the user sees, move its ``current_id``, and could race a real
regeneration; the copy leaves the user's tree exactly as it was, and the
replay stays inspectable for a while (``tidechat replay session`` on the
replay's session shows its timeline).

The replay is an ordinary turn (a new ``turn_id``, its own session stream,
queued on the model's pool) so it exercises the whole path the original
took: queue, worker, backend, storage, events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO, cast

from shared import rjson
from shared.conversation import Message, new_id, now
from shared.keys import WORKER_GROUP
from shared.models_file import ModelSpec, UnknownModelError
from shared.protocol import UserMessageEvent
from shared.queue_status import live_workers
from shared.stop_requests import StopAnnouncer
from shared.store import TITLE_MAX_CHARS
from shared.streams import StreamResponse, TurnRequest, queue_session_event, queue_turn
from tidechat.fmt import one_line, seconds
from tidechat.ops import BLOCK_MS, Ops, OpsError, raise_if_cancelled
from tidechat.replay_report import print_report
from tidechat.timeline import PAGE, TurnTimeline, decode, turn_timeline
from tidechat.turn_lookup import find_turn


def _branch(messages: dict[str, Any], leaf_id: str) -> list[str]:
    """Ids on the path from the root to ``leaf_id``, root first."""
    path: list[str] = []
    node: str | None = leaf_id
    while node is not None and node in messages and node not in path:
        path.append(node)
        node = messages[node].get("parent_id")
    return path[::-1]


class Progress:
    """Progress on stderr: one line redrawn on a terminal, milestones otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._drawn = False

    def note(self, text: str) -> None:
        self.clear()
        print(text, file=self.stream, flush=True)

    def live(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self._drawn = False


async def replay_turn(ops: Ops, args: argparse.Namespace) -> int:
    redis, keys = ops.redis, ops.keys
    found = await find_turn(ops, args.turn_id)
    old = found.turn
    raw = await rjson.json_get(redis, keys.conversation(old.conversation_id), "$")
    doc = rjson.decode_paths(raw, ["$"])
    conv = doc["$"] if doc else None
    if not isinstance(conv, dict):
        raise OpsError(f"conversation {old.conversation_id} no longer exists; nothing to replay")
    messages: dict[str, Any] = conv.get("messages") or {}
    if old.parent_id not in messages:
        raise OpsError(f"message {old.parent_id}, the question of turn {old.turn_id}, is gone")
    model = args.model or old.model
    try:
        spec = ops.catalog.require(model)
    except UnknownModelError as exc:
        raise OpsError(f"{exc} (the models file; choose with --model)") from exc

    question = Message.model_validate(messages[old.parent_id])
    turn, first_event, entry_id = await _queue_replay(ops, old, conv, question, spec, args.keep)
    session_key, prompts = keys.session(turn.session_id), keys.prompts(spec.pool)

    progress = Progress(sys.stderr)
    workers = await live_workers(redis, keys, spec.pool)
    progress.note(
        f"replaying turn {old.turn_id} as {turn.turn_id} on {prompts} (entry {entry_id}); "
        f"{len(workers)} live worker(s) in pool {spec.pool}"
    )
    if not workers:
        progress.note(f"  no live worker: start one (tidechat worker --pool {spec.pool})")
    replayed = await _wait(ops, turn, session_key, first_event, prompts, entry_id, args, progress)
    recorded = await turn_timeline(redis, keys.session(old.session_id), old.turn_id)
    print_report(
        found,
        question,
        conv,
        messages.get(old.turn_id),
        recorded,
        turn,
        replayed,
        entry_id,
        args,
    )
    return 0


async def _queue_replay(
    ops: Ops,
    old: TurnRequest,
    conv: dict[str, Any],
    question: Message,
    spec: ModelSpec,
    keep: int,
) -> tuple[TurnRequest, str, str]:
    """Write the throw-away copy, the replay's session and its turn in one
    transaction; returns the turn, its ``user_message`` event id and its
    prompt-stream entry id."""
    keys = ops.keys
    messages: dict[str, Any] = conv.get("messages") or {}
    copy_id, sid = new_id(), "replay-" + new_id()[:20]
    ts = now()
    copy = {
        **conv,
        "id": copy_id,
        "title": f"Replay: {conv.get('title', '')}"[:TITLE_MAX_CHARS],
        "model": spec.id,
        "messages": {mid: messages[mid] for mid in _branch(messages, old.parent_id)},
        "current_id": old.parent_id,
        "created_at": ts,
        "updated_at": ts,
        "replay_of": {"conversation_id": old.conversation_id, "turn_id": old.turn_id},
    }
    update: dict[str, Any] = {
        "turn_id": new_id(),
        "session_id": sid,
        "conversation_id": copy_id,
        "model": spec.id,
        "created_at": ts,
    }
    if "client_id" in TurnRequest.model_fields:
        update["client_id"] = None
    turn = old.model_copy(update=update)
    session_key = keys.session(sid)
    pipe = ops.redis.pipeline(transaction=True)
    rjson.queue_set(pipe, keys.conversation(copy_id), "$", copy)
    pipe.expire(keys.conversation(copy_id), keep)
    # The session stream must exist first: workers never create one (NOMKSTREAM).
    event = UserMessageEvent(conversation_id=copy_id, message=question, turn_id=turn.turn_id)
    queue_session_event(pipe, keys, sid, event, create=True)
    pipe.expire(session_key, keep)
    queue_turn(pipe, keys, spec.pool, turn)
    results = await pipe.execute()
    return turn, str(results[2]), str(results[4])


async def _wait(
    ops: Ops,
    turn: TurnRequest,
    session_key: str,
    after: str,
    prompts: str,
    entry_id: str,
    args: argparse.Namespace,
    progress: Progress,
) -> TurnTimeline:
    """Follow the replay's session stream until ``stream_end``, showing progress."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + args.timeout
    timeline = TurnTimeline(turn.turn_id)
    try:
        while timeline.end is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise OpsError(await _timed_out(ops, turn, args.timeout))
            block = max(1, int(min(BLOCK_MS, remaining * 1000)))
            response = cast(
                StreamResponse,
                await ops.redis.xread({session_key: after}, count=PAGE, block=block),
            )
            raise_if_cancelled()
            for _key, entries in response or []:
                for eid, fields in entries:
                    after = eid
                    event = decode(eid, fields)
                    started = timeline.started_ms
                    timeline.add(event)
                    if started is None and timeline.started_ms is not None:
                        who = await _consumer_of(ops, prompts, entry_id)
                        progress.note(
                            f"  picked up{who} after {seconds(loop.time() - began)}; generating"
                        )
                    elif event.type in ("stream_restart", "error"):
                        progress.note(f"  {event.type}: " + one_line(json.dumps(event.data), 120))
            elapsed = seconds(loop.time() - began)
            if timeline.started_ms is None:
                progress.live(f"  waiting for a worker... {elapsed}")
            else:
                progress.live(f"  generating: {len(timeline.streamed)} chars, {elapsed}")
    except asyncio.CancelledError:  # Ctrl-C: do not leave the replay running
        await asyncio.shield(_stop(ops, turn))
        raise
    progress.note(f"  done in {seconds(loop.time() - began)}")
    return timeline


async def _consumer_of(ops: Ops, prompts: str, entry_id: str) -> str:
    rows = await ops.redis.xpending_range(prompts, WORKER_GROUP, entry_id, entry_id, 1)
    return f" by {rows[0]['consumer']!s}" if rows else ""


async def _stop(ops: Ops, turn: TurnRequest) -> None:
    """Ask whichever worker has (or will get) the replay to stop it, as the Stop button does."""
    await StopAnnouncer(ops.redis, ops.keys).announce(turn.user_id, turn.turn_id)


async def _timed_out(ops: Ops, turn: TurnRequest, waited: float) -> str:
    await _stop(ops, turn)
    spec = ops.catalog.get(turn.model)
    pool = spec.pool if spec else "?"
    workers = await live_workers(ops.redis, ops.keys, pool)
    return (
        f"no reply within {waited:g}s ({len(workers)} live worker(s) in pool {pool}; "
        f"`tidechat streams` shows the queue); the replay turn {turn.turn_id} was asked to stop"
    )
