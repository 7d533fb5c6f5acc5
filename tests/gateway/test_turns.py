"""The turn service on its own against the real Redis: what one ``message``
frame writes (the message stored first, then its events and the turn queued
last), what a blocked one writes instead (events, the review list, the audit
log, no turn), and that a resent frame is acted on once."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.config import GatewaySettings
from gateway.errors import ApiError
from gateway.turns import TurnService
from shared.audit import AuditLog
from shared.conversation import Message
from shared.keys import FIELD_TYPE, Keys
from shared.models_file import ModelCatalog, ScriptedModel
from shared.moderation import FlagLog, ModerationConfig, ModerationRule, Moderator
from shared.protocol import EditFrame, MessageFrame, RegenerateFrame, UserInfo
from shared.store import ConversationStore
from shared.streams import TurnRequest, decode_turn

ALICE = UserInfo(id="alice", username="alice")
SESSION = "s1"
NO = "Not that word here."


@pytest.fixture
async def turns(redis: Redis, keys: Keys) -> TurnService:
    moderation = ModerationConfig(
        rules=[ModerationRule(words=["contraband"], reason=NO, applies_to=["input"])]
    )
    catalog = ModelCatalog([ScriptedModel(id="scripted", backend="scripted")], moderation)
    cfg = GatewaySettings(max_message_chars=100, fair_turns_per_user=5)
    store = ConversationStore(redis, keys)
    return TurnService(redis, keys, catalog, store, cfg, moderator=Moderator(catalog.moderation))


async def session_types(redis: Redis, keys: Keys) -> list[str]:
    entries = await redis.xrange(keys.session(SESSION))
    return [fields[FIELD_TYPE] for _, fields in entries]


async def conversation_ids(redis: Redis, keys: Keys) -> list[str]:
    found, _ = await ConversationStore(redis, keys).list_for_user("alice")
    return [c.id for c in found]


async def messages(redis: Redis, keys: Keys) -> list[Message]:
    """The messages of alice's one conversation."""
    [cid] = await conversation_ids(redis, keys)
    conv = await ConversationStore(redis, keys).get_owned(cid, "alice")
    return list(conv.messages.values())


async def queued(redis: Redis, keys: Keys) -> int:
    return int(await redis.xlen(keys.prompts("default")))


async def turns_queued(redis: Redis, keys: Keys) -> list[TurnRequest]:
    return [decode_turn(fields) for _, fields in await redis.xrange(keys.prompts("default"))]


async def test_a_message_is_stored_told_and_queued_once(
    turns: TurnService, redis: Redis, keys: Keys
) -> None:
    frame = MessageFrame(type="message", content="hello there", client_id="c1")
    turn_id = await turns.message(ALICE, SESSION, frame)
    assert turn_id is not None
    assert await session_types(redis, keys) == ["conversation_created", "user_message"]
    [turn] = await turns_queued(redis, keys)
    [question] = await messages(redis, keys)
    assert (turn.turn_id, turn.kind, turn.client_id) == (turn_id, "message", "c1")
    assert (turn.parent_id, turn.session_id, turn.user_id) == (question.id, SESSION, "alice")
    assert turns.queue.submitted == 1
    # The same frame again (a client that lost its socket): nothing more.
    assert await turns.message(ALICE, SESSION, frame) is None
    assert await queued(redis, keys) == 1
    assert len(await session_types(redis, keys)) == 2


async def test_a_blocked_message_is_stored_marked_and_listed_but_never_answered(
    turns: TurnService, redis: Redis, keys: Keys
) -> None:
    frame = MessageFrame(type="message", content="any contraband?", client_id="c2")
    assert await turns.message(ALICE, SESSION, frame) is None
    assert await session_types(redis, keys) == [
        "conversation_created",
        "user_message",
        "error",
    ]
    assert await queued(redis, keys) == 0
    flags, _ = await FlagLog(redis, keys).list()
    assert [(f.user_id, f.reason, f.direction) for f in flags] == [("alice", NO, "input")]
    assert [m.blocked for m in await messages(redis, keys)] == [NO]
    [entry] = [e for e in await AuditLog(redis, keys).entries() if e.kind == "moderation.blocked"]
    assert entry.actor is not None and entry.actor.id == "alice"
    assert entry.target is None
    assert entry.detail["direction"] == "input"
    assert entry.detail["rule"]


async def test_edit_and_regenerate_queue_a_turn_each_and_refuse_what_is_not_theirs(
    turns: TurnService, redis: Redis, keys: Keys
) -> None:
    await turns.message(ALICE, SESSION, MessageFrame(type="message", content="first"))
    [question] = await messages(redis, keys)
    cid = (await conversation_ids(redis, keys))[0]
    edited = EditFrame(type="edit", conversation_id=cid, message_id=question.id, content="second")
    assert await turns.edit(ALICE, SESSION, edited) is not None
    again = RegenerateFrame(type="regenerate", conversation_id=cid, message_id=question.id)
    assert await turns.regenerate(ALICE, SESSION, again) is not None
    queued_turns = await turns_queued(redis, keys)
    assert [t.kind for t in queued_turns] == ["message", "edit", "regenerate"]
    assert queued_turns[2].parent_id == question.id
    bob = UserInfo(id="bob", username="bob")
    with pytest.raises(ApiError) as caught:
        await turns.regenerate(bob, "s2", again)
    assert caught.value.code == "not_found"
    with pytest.raises(ApiError) as caught:
        await turns.message(ALICE, SESSION, MessageFrame(type="message", content="x" * 101))
    assert caught.value.code == "too_large"
