"""Driving a worker in-process against real Redis, without a gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from shared.conversation import Message, new_id
from shared.models_file import ModelCatalog, ModelSpec
from shared.store import ConversationStore
from shared.streams import TurnRequest, encode_turn
from tests.support.keys import KEYS
from worker.config import WorkerSettings
from worker.worker import Worker


def settings(redis_url: str, **overrides: Any) -> WorkerSettings:
    base: dict[str, Any] = {
        "redis_url": redis_url,
        "concurrency": 4,
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
    }
    base.update(overrides)
    return WorkerSettings(**base)


async def queue_turn(
    redis: Redis,
    spec: ModelSpec,
    content: str = "Hello, worker?",
    *,
    user: str = "u1",
    session: str = "sessionA1",
    conversation_id: str | None = None,
    parent_id: str | None = None,
) -> TurnRequest:
    """Store a user message (new conversation unless given) and queue its turn."""
    store = ConversationStore(redis, KEYS)
    if conversation_id is None:
        conversation_id = (await store.create(user, model=spec.id)).id
    msg = Message(id=new_id(), parent_id=parent_id, role="user", content=content)
    turn = TurnRequest(
        turn_id=new_id(),
        session_id=session,
        user_id=user,
        conversation_id=conversation_id,
        parent_id=msg.id,
        model=spec.id,
    )
    pipe = redis.pipeline(transaction=False)
    store.queue_add_message(pipe, conversation_id, msg, owner=user)
    pipe.xadd(KEYS.session(session), {"t": "init", "d": "{}"})  # the gateway creates the stream
    pipe.xadd(KEYS.prompts(spec.pool), encode_turn(turn))  # type: ignore[arg-type]
    await pipe.execute()
    return turn


async def wait_event(
    redis: Redis, session: str, type_: str, *, turn_id: str | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """Block on the session stream until an event of ``type_`` arrives."""
    cursor = "0-0"
    async with asyncio.timeout(timeout):
        while True:
            got = await redis.xread({KEYS.session(session): cursor}, block=1000, count=100)
            for _, entries in got or []:
                for entry_id, fields in entries:
                    cursor = entry_id
                    if fields.get("t") != type_:
                        continue
                    event = json.loads(fields["d"])
                    if turn_id is None or event.get("turn_id") == turn_id:
                        event["event_id"] = entry_id
                        return dict(event)


async def session_events(redis: Redis, session: str) -> list[dict[str, Any]]:
    out = []
    for entry_id, fields in await redis.xrange(KEYS.session(session)):
        if fields.get("t") == "init":
            continue
        event = json.loads(fields["d"])
        event["event_id"] = entry_id
        out.append(event)
    return out


@asynccontextmanager
async def running_worker(
    redis: Redis, cfg: WorkerSettings, specs: list[ModelSpec], **kwargs: Any
) -> AsyncIterator[Worker]:
    worker = Worker(redis, cfg, ModelCatalog(specs), **kwargs)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.cancels.connected.wait(), 10)
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
