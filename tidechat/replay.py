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

from shared.conversation import BranchPage, Conversation, Message, new_id, now
from shared.keys import WORKER_GROUP
from shared.models_file import ModelSpec, UnknownModelError
from shared.protocol import UserMessageEvent
from shared.queue_status import live_workers
from shared.stop_requests import StopAnnouncer
from shared.store import TITLE_MAX_CHARS, ConversationStore, NotFoundError
from shared.streams import StreamResponse, TurnRequest, queue_session_event, queue_turn
from tidechat.fmt import one_line, seconds
from tidechat.ops import BLOCK_MS, Ops, OpsError, raise_if_cancelled
from tidechat.replay_report import print_report
from tidechat.timeline import PAGE, TurnTimeline, decode, turn_timeline
from tidechat.turn_lookup import find_turn


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
    store = ConversationStore(redis, keys)
    try:
        page = await store.page(old.conversation_id, old.user_id, limit=1)
    except NotFoundError as exc:
        raise OpsError(
            f"conversation {old.conversation_id} no longer exists; nothing to replay"
        ) from exc
    try:
        branch = await store.branch(old.conversation_id, old.user_id, old.parent_id)
    except NotFoundError as exc:
        raise OpsError(
            f"message {old.parent_id}, the question of turn {old.turn_id}, is gone"
        ) from exc
    model = args.model or old.model
    try:
        spec = ops.catalog.require(model)
    except UnknownModelError as exc:
        raise OpsError(f"{exc} (the models file; choose with --model)") from exc

    question = branch[-1]
    turn, first_event, entry_id = await _queue_replay(
        ops, store, old, page, branch, spec, args.keep
    )
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
    recorded_reply = await store.message(old.conversation_id, old.turn_id)
    print_report(
        found,
        question,
        {"title": page.title},
        recorded_reply.stored() if recorded_reply is not None else None,
        recorded,
        turn,
        replayed,
        entry_id,
        args,
    )
    return 0


async def _queue_replay(
    ops: Ops,
    store: ConversationStore,
    old: TurnRequest,
    page: BranchPage,
    branch: list[Message],
    spec: ModelSpec,
    keep: int,
) -> tuple[TurnRequest, str, str]:
    """Write the throw-away copy (the branch up to the question, expiring),
    then the replay's session and its turn; returns the turn, its
    ``user_message`` event id and its prompt-stream entry id."""
    keys = ops.keys
    copy_id, sid = new_id(), "replay-" + new_id()[:20]
    ts = now()
    copy = Conversation(
        id=copy_id,
        owner=old.user_id,
        title=f"Replay: {page.title}"[:TITLE_MAX_CHARS],
        system_prompt=page.system_prompt,
        model=spec.id,
        created_at=ts,
        updated_at=ts,
        current_id=old.parent_id,
        messages={m.id: m for m in branch},
    )
    await store.bulk.write(copy, listed=False, ttl=keep, replay_of=old.conversation_id)
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
    # The session stream must exist first: workers never create one
    # (NOMKSTREAM). The session's keys and the pool's are in other slots: a
    # pipeline, in this order.
    pipe = ops.redis.pipeline(transaction=False)
    question = branch[-1]
    event = UserMessageEvent(conversation_id=copy_id, message=question, turn_id=turn.turn_id)
    queue_session_event(pipe, keys, sid, event, create=True)
    pipe.expire(session_key, keep)
    queue_turn(pipe, keys, spec.pool, turn)
    results = await pipe.execute()
    return turn, str(results[0]), str(results[2])


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
