"""The caller's conversations: list and search, create, read, change, delete,
export and import. Another user's conversation answers 404, exactly like a
missing one, so ids cannot be probed."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import CurrentUser, ServicesDep
from gateway.errors import ApiError
from shared.conversation import (
    Conversation,
    ConversationSummary,
    ConversationView,
    Id,
    Message,
    new_id,
    now,
)
from shared.store import TITLE_MAX_CHARS, NotFoundError

router = APIRouter()

#: Largest conversation an import accepts, and longest message in it.
IMPORT_MAX_MESSAGES = 20_000
IMPORT_MAX_CONTENT_CHARS = 1_000_000
EXPORT_FORMAT = "tidechat.conversation.v1"


class ConversationPage(BaseModel):
    items: list[ConversationSummary]
    next_cursor: str | None


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX_CHARS)] | None = None
    system_prompt: str = ""
    model: str | None = None


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX_CHARS)] | None = None
    system_prompt: str | None = None
    model: str | None = None
    current_id: Id | None = None


class ConversationImport(BaseModel):
    """A JSON export (``GET .../export?format=json``) coming back in."""

    model_config = ConfigDict(extra="ignore")

    title: Annotated[str, Field(max_length=TITLE_MAX_CHARS)] = "Imported chat"
    system_prompt: str = ""
    model: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    current_id: Id | None = None
    messages: Annotated[dict[str, Message], Field(max_length=IMPORT_MAX_MESSAGES)]


async def _owned(services: ServicesDep, cid: str, uid: str) -> Conversation:
    try:
        return await services.store.get_owned(cid, uid)
    except NotFoundError as exc:
        raise ApiError("not_found", "conversation not found") from exc


def _check_model(services: ServicesDep, model: str | None) -> None:
    if model is not None and services.catalog.get(model) is None:
        offered = ", ".join(m.id for m in services.catalog.models)
        raise ApiError("bad_request", f"unknown model {model!r}; offered: {offered}")


def _check_system_prompt(services: ServicesDep, text: str | None) -> None:
    if text is not None and len(text) > services.settings.max_message_chars:
        raise ApiError(
            "too_large", f"the system prompt is longer than {services.settings.max_message_chars:,}"
        )


@router.get("")
async def list_conversations(
    user: CurrentUser,
    services: ServicesDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> ConversationPage:
    """Newest first; ``q`` searches titles and message text."""
    try:
        items, next_cursor = await services.store.list_for_user(
            user.id, q=q, limit=limit, cursor=cursor
        )
    except ValueError as exc:
        raise ApiError("bad_request", "invalid cursor") from exc
    return ConversationPage(items=items, next_cursor=next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_conversation(
    body: ConversationCreate, user: CurrentUser, services: ServicesDep
) -> ConversationView:
    _check_model(services, body.model)
    _check_system_prompt(services, body.system_prompt)
    conv = await services.store.create(
        user.id,
        title=body.title or "New chat",
        system_prompt=body.system_prompt,
        model=body.model or services.catalog.default.id,
    )
    return conv.view()


@router.get("/{cid}")
async def get_conversation(cid: Id, user: CurrentUser, services: ServicesDep) -> ConversationView:
    return (await _owned(services, cid, user.id)).view()


@router.patch("/{cid}")
async def patch_conversation(
    cid: Id, body: ConversationPatch, user: CurrentUser, services: ServicesDep
) -> ConversationView:
    """Rename, change the system prompt or model, or switch branch (``current_id``)."""
    conv = await _owned(services, cid, user.id)
    fields: dict[str, Any] = body.model_dump(exclude_unset=True, exclude_none=True)
    _check_model(services, body.model)
    _check_system_prompt(services, body.system_prompt)
    if body.current_id is not None and body.current_id not in conv.messages:
        raise ApiError("not_found", "message not found in this conversation")
    if fields:
        await services.store.update(cid, user.id, fields)
    return (await _owned(services, cid, user.id)).view()


@router.delete("/{cid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conversation(cid: Id, user: CurrentUser, services: ServicesDep) -> Response:
    await _owned(services, cid, user.id)
    await services.store.delete(cid, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _filename(title: str, ext: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60] or "conversation"
    return f"{slug}.{ext}"


def to_markdown(conv: ConversationView) -> str:
    """The branch on screen as a readable Markdown document."""
    when = datetime.fromtimestamp(conv.updated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {conv.title}", "", f"_Exported from tidechat on {when}; model: {conv.model}_", ""]
    if conv.system_prompt:
        lines += ["## System prompt", "", conv.system_prompt, ""]
    for message in conv.branch():
        who = "You" if message.role == "user" else f"Assistant ({message.model or conv.model})"
        lines += [f"## {who}", "", message.content or "_(no text)_", ""]
    return "\n".join(lines)


@router.get("/{cid}/export")
async def export_conversation(
    cid: Id,
    user: CurrentUser,
    services: ServicesDep,
    format: Literal["markdown", "json"] = "markdown",
) -> Response:
    """A download: the current branch as Markdown, or the whole tree as JSON."""
    view = (await _owned(services, cid, user.id)).view()
    if format == "json":
        body = {"format": EXPORT_FORMAT, **view.model_dump(mode="json")}
        return JSONResponse(
            body,
            headers={
                "Content-Disposition": f'attachment; filename="{_filename(view.title, "json")}"'
            },
        )
    return Response(
        to_markdown(view),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(view.title, "md")}"'},
    )


def _check_tree(messages: dict[str, Message]) -> None:
    for key, message in messages.items():
        if key != message.id:
            raise ApiError("bad_request", f"message key {key!r} does not match its id")
        if len(message.content) > IMPORT_MAX_CONTENT_CHARS:
            raise ApiError("too_large", f"message {key} is too long to import")
        if message.parent_id is not None and message.parent_id not in messages:
            raise ApiError("bad_request", f"message {key} has a parent that is not in the file")
    for start in messages:
        seen: set[str] = set()
        node: str | None = start
        while node is not None:
            if node in seen:
                raise ApiError("bad_request", "the messages form a cycle")
            seen.add(node)
            node = messages[node].parent_id


IMPORTED_SUFFIX = " (imported)"


def _imported_title(title: str) -> str:
    """The copy is told apart from its original in the list (once, however often re-imported)."""
    base = (title or "Imported chat").removesuffix(IMPORTED_SUFFIX)
    return base[: TITLE_MAX_CHARS - len(IMPORTED_SUFFIX)] + IMPORTED_SUFFIX


@router.post("/import", status_code=status.HTTP_201_CREATED)
async def import_conversation(
    body: ConversationImport, user: CurrentUser, services: ServicesDep
) -> ConversationView:
    """A JSON export back in, as a new conversation of the caller's."""
    _check_tree(body.messages)
    _check_system_prompt(services, body.system_prompt)
    ts = now()
    current = body.current_id
    if current is None or current not in body.messages:
        current = (
            max(body.messages.values(), key=lambda m: m.created_at).id if body.messages else None
        )
    model = body.model if body.model and services.catalog.get(body.model) else None
    conv = Conversation(
        id=new_id(),
        owner=user.id,
        title=_imported_title(body.title),
        system_prompt=body.system_prompt,
        model=model or services.catalog.default.id,
        created_at=body.created_at or ts,
        updated_at=ts,
        current_id=current,
        messages=body.messages,
    )
    pipe = services.redis.pipeline(transaction=False)
    services.store.queue_save(pipe, conv)
    await pipe.execute()
    return conv.view()
