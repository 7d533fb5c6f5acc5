"""How a message and a conversation are laid out in Redis hashes (field
names in ``shared/store/lua.py``), and back.

Short field names and one JSON field for everything rarely set (model,
finish reason, usage, error, notice) keep a message to one small hash:
measured, the whole layout costs about what one JSON document per
conversation did (docs/architecture.md, "The conversation store").
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core

from shared.conversation import Conversation, ConversationSummary, Message
from shared.tokens import message_tokens

#: A hash's fields as written (redis-py's ``hset`` mapping type is invariant
#: in its keys, so a plain ``dict[str, str]`` does not satisfy it).
HashFields = dict[Any, str]

#: Message fields kept in the JSON field ``x`` (when set): everything but
#: those with a field of their own and the derived ``children``. Derived
#: from the model, so a field added to ``Message`` later (attachments,
#: citations...) is stored without a change here.
_OWN_FIELDS = {"id", "parent_id", "children", "role", "content", "created_at"}
EXTRA_FIELDS = tuple(name for name in Message.model_fields if name not in _OWN_FIELDS)
_EXTRA_SET = set(EXTRA_FIELDS)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dumps_fast(value: Any) -> bytes:
    """``dumps`` for big plain values (lists and dicts of strings: bulk
    batches), in Rust: the same JSON, as UTF-8 bytes, several times faster."""
    return pydantic_core.to_json(value)


def extras(message: Message) -> str:
    """The JSON of a message's rarely-set fields, or '' when none is set
    (most user messages: checked without dumping the model)."""
    if not any(getattr(message, name) for name in EXTRA_FIELDS):
        return ""
    # One Rust pass (a dict, then json.dumps, cost imports twice as much).
    data = message.model_dump_json(include=_EXTRA_SET, exclude_defaults=True)
    return "" if data == "{}" else data


def ts(value: float) -> str:
    """A timestamp as stored: the shortest text that reads back the same float."""
    return repr(float(value))


def message_fields(message: Message, owner: str) -> HashFields:
    """The hash of a message (for bulk writes: imports and the migration)."""
    fields: HashFields = {
        "o": owner,
        "p": message.parent_id or "",
        "r": message.role,
        "t": message.content,
        "c": ts(message.created_at),
        "n": str(message_tokens(message.content)),
    }
    x = extras(message)
    if x:
        fields["x"] = x
    return fields


def message_row(message: Message, owner: str) -> list[str]:
    """A message as ``lua.BULK_MESSAGES`` takes it."""
    return [
        message.id,
        owner,
        message.parent_id or "",
        message.role,
        message.content,
        ts(message.created_at),
        str(message_tokens(message.content)),
        extras(message),
    ]


def message_from_row(
    mid: str,
    parent: str | None,
    role: str,
    text: str,
    created: str,
    x: str | None,
    children: str | None = None,
) -> Message:
    """A message from a script's row ({id, p, r, t, c, x[, children]})."""
    data: dict[str, Any] = json.loads(x) if x else {}
    return Message(
        id=mid,
        parent_id=parent or None,
        role=role,
        content=text,
        created_at=float(created),
        children=[c for c in (children or "").split(",") if c],
        **data,
    )


def message_from_hash(mid: str, fields: dict[str, str]) -> Message:
    return message_from_row(
        mid, fields.get("p"), fields["r"], fields.get("t", ""), fields["c"], fields.get("x")
    )


def pairs(flat: list[Any]) -> dict[str, str]:
    """A HGETALL reply from inside a script (a flat list) as a dict."""
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def conversation_fields(conv: Conversation) -> HashFields:
    """The conversation hash: its settled fields (the tree holds the rest)."""
    return {
        "o": conv.owner,
        "t": conv.title,
        "m": conv.model or "",
        "sp": conv.system_prompt,
        "ca": ts(conv.created_at),
    }


def summary_from(cid: str, meta: dict[str, str], updated: str | None) -> ConversationSummary:
    created = float(meta.get("ca") or 0)
    return ConversationSummary(
        id=cid,
        title=meta.get("t", ""),
        model=meta.get("m") or None,
        created_at=created,
        updated_at=float(updated) if updated else created,
    )


def children_of(messages: list[Message]) -> dict[str, str]:
    """The tree's parent -> children fields for a whole set of messages
    (``^`` for the roots), siblings oldest first."""
    kids: dict[str, list[str]] = {}
    for message in sorted(messages, key=lambda m: m.created_at):
        kids.setdefault(message.parent_id or "^", []).append(message.id)
    return {parent: ",".join(ids) for parent, ids in kids.items()}
