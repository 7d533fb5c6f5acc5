"""Importing a conversation (a JSON export coming back in): bounded work,
off the event loop.

An import is the one request whose cost grows with what the client sends:
megabytes of JSON, thousands of messages, a tree that must be checked. So
the body is read against a byte limit before anything else; parsing,
validation, the tree check and building the stored document and the reply
and encoding it for Redis all run in a worker thread (the gateway's event
loop keeps serving everyone else meanwhile); and the tree check is linear:
each message's depth is computed once, by walking up only to the first
ancestor already known. The reply is the conversation's first page (like
``GET``), not the whole file sent back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import ApiError, describe_validation
from shared.conversation import Conversation, Id, Message, new_id, now
from shared.models_file import ModelCatalog
from shared.store import TITLE_MAX_CHARS
from shared.store.bulk import WritePlan, plan

#: Longest message an import accepts (replies can be longer than what a user
#: may type); the whole file is bounded by ``ImportLimits.max_bytes``.
IMPORT_MAX_CONTENT_CHARS = 1_000_000
EXPORT_FORMAT = "tidechat.conversation.v1"
#: An imported copy is told apart from its original in the list.
IMPORTED_SUFFIX = " (imported)"


class ConversationImport(BaseModel):
    """A JSON export (``GET .../export?format=json``) coming back in."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    title: Annotated[str, Field(max_length=TITLE_MAX_CHARS)] = "Imported chat"
    system_prompt: str = ""
    model: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    current_id: Id | None = None
    messages: dict[str, Message]


@dataclass(frozen=True, slots=True)
class ImportLimits:
    max_bytes: int
    max_messages: int
    max_depth: int
    max_system_prompt_chars: int


@dataclass(frozen=True, slots=True)
class ImportedConversation:
    conversation: Conversation
    #: Its messages and tree encoded for ``Bulk.write``.
    encoded: WritePlan
    #: Messages and bytes of message text, for the owner's storage quota.
    messages: int
    content_bytes: int


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError("too_large", f"an import may be at most {max_bytes:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError("too_large", f"an import may be at most {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_tree(messages: dict[str, Message], max_depth: int) -> None:
    """Every key is its message's id, every parent is present, no cycle, no
    branch deeper than ``max_depth``: in time linear in the messages."""
    for key, message in messages.items():
        if key != message.id:
            raise ApiError("bad_request", "a message's key does not match its id")
        if len(message.content) > IMPORT_MAX_CONTENT_CHARS:
            raise ApiError("too_large", f"message {key} is too long to import")
        if message.parent_id is not None and message.parent_id not in messages:
            raise ApiError("bad_request", f"message {key} has a parent that is not in the file")
    depth: dict[str, int] = {}
    for start in messages:
        path: list[str] = []
        on_path: set[str] = set()
        node: str | None = start
        while node is not None and node not in depth:
            if node in on_path:
                raise ApiError("bad_request", "the messages form a cycle")
            on_path.add(node)
            path.append(node)
            node = messages[node].parent_id
        level = 0 if node is None else depth[node]
        for seen in reversed(path):
            level += 1
            if level > max_depth:
                raise ApiError(
                    "too_large", f"the conversation is deeper than {max_depth:,} messages"
                )
            depth[seen] = level


def imported_title(title: str) -> str:
    """The copy's title: the original's with the suffix, once however often
    it is re-imported."""
    base = (title or "Imported chat").removesuffix(IMPORTED_SUFFIX)
    return base[: TITLE_MAX_CHARS - len(IMPORTED_SUFFIX)] + IMPORTED_SUFFIX


def build_import(
    body: bytes, owner: str, limits: ImportLimits, catalog: ModelCatalog
) -> ImportedConversation:
    """Everything CPU-heavy about an import; runs in a worker thread."""
    try:
        # One Rust pass parses and validates the file (no Python objects for
        # the raw JSON first: about half the time of json.loads then
        # validating); bad UTF-8, bad JSON and nesting too deep for its
        # parser are validation errors too. The body is bounded in bytes,
        # so this is too; the message count is checked right after.
        body_model = ConversationImport.model_validate_json(body)
    except ValidationError as exc:
        errors = [dict(e) for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in errors):
            raise ApiError("bad_request", "the file is not valid JSON") from exc
        raise ApiError("bad_request", describe_validation(errors)) from exc
    if len(body_model.messages) > limits.max_messages:
        raise ApiError("too_large", f"an import may hold at most {limits.max_messages:,} messages")
    if len(body_model.system_prompt) > limits.max_system_prompt_chars:
        raise ApiError(
            "too_large", f"the system prompt is longer than {limits.max_system_prompt_chars:,}"
        )
    check_tree(body_model.messages, limits.max_depth)
    ts = now()
    current = body_model.current_id
    if current is None or current not in body_model.messages:
        newest = max(body_model.messages.values(), key=lambda m: m.created_at, default=None)
        current = newest.id if newest else None
    model = body_model.model if body_model.model and catalog.get(body_model.model) else None
    conv = Conversation(
        id=new_id(),
        owner=owner,
        title=imported_title(body_model.title),
        system_prompt=body_model.system_prompt,
        model=model or catalog.default.id,
        created_at=body_model.created_at or ts,
        updated_at=ts,
        current_id=current,
        messages=body_model.messages,
    )
    return ImportedConversation(
        conversation=conv,
        encoded=plan(conv),
        messages=len(conv.messages),
        content_bytes=sum(len(m.content.encode()) for m in conv.messages.values()),
    )
