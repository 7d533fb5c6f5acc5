"""The caller's conversations: list and search, create, read, change, delete,
export and import. Another user's conversation answers 404, exactly like a
missing one, so ids cannot be probed."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.admission import Adds
from gateway.attachments import mark_missing
from gateway.deps import CurrentUser, ServicesDep
from gateway.errors import ApiError
from gateway.imports import (
    EXPORT_FORMAT,
    ConversationImport,
    ImportLimits,
    build_import,
    read_body,
)
from shared import storage_usage
from shared.collections import CollectionStore
from shared.conversation import (
    BranchPage,
    BranchSwitch,
    Conversation,
    ConversationView,
    Id,
    Message,
    SearchHit,
)
from shared.keys import PAGE_MAX_MESSAGES, PAGE_MESSAGES
from shared.models_file import UnknownModelError
from shared.protocol import ConversationCreatedEvent, ConversationDeletedEvent, TitleEvent
from shared.store import TITLE_MAX_CHARS, MessageNotFoundError, NotFoundError
from shared.streams import publish_feed_event, queue_feed_event
from shared.tools import steps_markdown

router = APIRouter()


class ConversationPage(BaseModel):
    #: Conversations, newest first; with ``q``, the best matches first, each
    #: with a snippet of the message that matched (none when the title did).
    items: list[SearchHit]
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


async def _owned(services: ServicesDep, cid: str, uid: str) -> Conversation:
    """The whole conversation (exports only: its cost grows with it)."""
    try:
        return await services.store.get_owned(cid, uid)
    except NotFoundError as exc:
        raise ApiError("not_found", "conversation not found") from exc


async def _page(
    services: ServicesDep, cid: str, uid: str, leaf: str | None = None, limit: int = PAGE_MESSAGES
) -> BranchPage:
    try:
        return await services.store.page(cid, uid, leaf=leaf, limit=limit)
    except MessageNotFoundError as exc:
        raise ApiError("not_found", "message not found in this conversation") from exc
    except NotFoundError as exc:
        raise ApiError("not_found", "conversation not found") from exc


def _check_model(services: ServicesDep, model: str | None) -> None:
    if model is None:
        return
    try:
        services.catalog.require(model)
    except UnknownModelError as exc:
        raise ApiError("bad_request", exc.message) from exc


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
    """Newest first; ``q`` searches titles and message text (the query
    engine, ``shared/store/search.py``): best first, one page, no cursor."""
    if q is not None and q.strip():
        hits = await services.search.search(user.id, q, limit=limit)
        return ConversationPage(items=hits, next_cursor=None)
    try:
        items, next_cursor = await services.store.list_for_user(user.id, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise ApiError("bad_request", "invalid cursor") from exc
    return ConversationPage(
        items=[SearchHit(**item.model_dump()) for item in items], next_cursor=next_cursor
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_conversation(
    body: ConversationCreate, user: CurrentUser, services: ServicesDep
) -> ConversationView:
    _check_model(services, body.model)
    _check_system_prompt(services, body.system_prompt)
    await services.turns.admission.check(user.id, None, Adds(conversations=1))
    pipe = services.redis.pipeline(transaction=False)
    conv = await services.store.create(
        user.id,
        title=body.title or "New chat",
        system_prompt=body.system_prompt,
        model=body.model or services.catalog.default.id,
        pipe=pipe,
    )
    storage_usage.queue_add(pipe, services.settings.keys, user.id, conversations=1)
    # The user's other tabs list it at once (gateway/live.py).
    created = ConversationCreatedEvent(conversation=conv.view())
    queue_feed_event(pipe, services.settings.keys, user.id, created)
    await pipe.execute()
    return conv.view()


@router.get("/{cid}")
async def get_conversation(
    cid: Id,
    user: CurrentUser,
    services: ServicesDep,
    leaf: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX_MESSAGES)] = PAGE_MESSAGES,
) -> BranchPage:
    """A page of a branch, from its tail: the newest ``limit`` messages up
    from ``leaf`` (default: the current leaf), each with its children, and
    the first one's siblings (``head_siblings``). ``older`` is the ``leaf``
    of the page above it (none at the root)."""
    return await _page(services, cid, user.id, leaf, limit)


@router.patch("/{cid}")
async def patch_conversation(
    cid: Id, body: ConversationPatch, user: CurrentUser, services: ServicesDep
) -> BranchPage:
    """Rename, change the system prompt or model, or switch branch
    (``current_id``); answers the page that ends at the current leaf."""
    fields: dict[str, Any] = body.model_dump(exclude_unset=True, exclude_none=True)
    _check_model(services, body.model)
    _check_system_prompt(services, body.system_prompt)
    if fields:
        try:
            await services.store.update(cid, user.id, fields)
        except MessageNotFoundError as exc:
            raise ApiError("not_found", "message not found in this conversation") from exc
        except NotFoundError as exc:
            raise ApiError("not_found", "conversation not found") from exc
    if body.title is not None:
        renamed = TitleEvent(conversation_id=cid, title=body.title)
        await publish_feed_event(services.redis, services.settings.keys, user.id, renamed)
    return await _page(services, cid, user.id)


class BranchChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: Id


@router.post("/{cid}/branch")
async def switch_branch(
    cid: Id, body: BranchChoice, user: CurrentUser, services: ServicesDep
) -> BranchSwitch:
    """Show the newest branch through ``message_id`` (a sibling chosen in
    the navigator): its newest leaf becomes current, found in Redis (a
    client that has loaded only part of a long conversation cannot)."""
    try:
        return await services.store.switch_branch(cid, user.id, body.message_id)
    except MessageNotFoundError as exc:
        raise ApiError("not_found", "message not found in this conversation") from exc
    except NotFoundError as exc:
        raise ApiError("not_found", "conversation not found") from exc


@router.delete("/{cid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conversation(cid: Id, user: CurrentUser, services: ServicesDep) -> Response:
    try:
        await services.store.delete(cid, user.id)
    except NotFoundError as exc:
        raise ApiError("not_found", "conversation not found") from exc
    await CollectionStore(services.redis, services.settings.keys).conversation_gone(user.id, cid)
    deleted = ConversationDeletedEvent(conversation_id=cid)
    await publish_feed_event(services.redis, services.settings.keys, user.id, deleted)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _filename(title: str, ext: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60] or "conversation"
    return f"{slug}.{ext}"


def to_markdown(conv: BranchPage, branch: list[Message]) -> str:
    """The branch on screen as a readable Markdown document."""
    when = datetime.fromtimestamp(conv.updated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {conv.title}", "", f"_Exported from tidechat on {when}; model: {conv.model}_", ""]
    if conv.system_prompt:
        lines += ["## System prompt", "", conv.system_prompt, ""]
    for message in branch:
        who = "You" if message.role == "user" else f"Assistant ({message.model or conv.model})"
        lines += [f"## {who}", ""]
        lines += steps_markdown(message.steps or [])  # tools (issue 15)
        lines += [message.content or "_(no text)_", ""]
        if message.attachments:
            names = ", ".join(a.name for a in message.attachments)
            lines += [f"_Attached: {names}_", ""]
        if message.citations:
            lines += ["Sources:", ""]
            for c in message.citations:
                where = f"{c.name}, page {c.page}" if c.page else c.name
                lines.append(f"{c.n}. {where}")
            lines.append("")
    return "\n".join(lines)


@router.get("/{cid}/export")
async def export_conversation(
    cid: Id,
    user: CurrentUser,
    services: ServicesDep,
    format: Literal["markdown", "json"] = "markdown",
) -> Response:
    """A download: the current branch as Markdown, or the whole tree as JSON."""
    if format == "markdown":
        page = await _page(services, cid, user.id, limit=1)
        branch = await services.store.branch(cid, user.id)
        return Response(
            to_markdown(page, branch),
            media_type="text/markdown; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{_filename(page.title, "md")}"'
            },
        )
    view = (await _owned(services, cid, user.id)).view()
    body = {"format": EXPORT_FORMAT, **view.model_dump(mode="json")}
    return JSONResponse(
        body,
        headers={"Content-Disposition": f'attachment; filename="{_filename(view.title, "json")}"'},
    )


def import_schema() -> dict[str, Any]:
    """The import body's JSON schema, for OpenAPI: the body is read raw (to
    bound it), so FastAPI cannot derive it. ``Message`` is already among the
    components (conversation views use it)."""
    schema = ConversationImport.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationView,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": import_schema()}},
        }
    },
)
async def import_conversation(
    request: Request, user: CurrentUser, services: ServicesDep
) -> Response:
    """A JSON export back in, as a new conversation of the caller's.

    Bounded (``TIDECHAT_IMPORT_MAX_BYTES``, ``_MAX_MESSAGES``, ``_MAX_DEPTH``)
    and checked in a worker thread (``gateway/imports.py``)."""
    cfg = services.settings
    limits = ImportLimits(
        max_bytes=cfg.import_max_bytes,
        max_messages=cfg.import_max_messages,
        max_depth=cfg.import_max_depth,
        max_system_prompt_chars=cfg.max_message_chars,
    )
    # Refused before the body is read when the user cannot store another
    # conversation; the whole size is checked once it is known.
    await services.turns.admission.check(user.id, None, Adds(conversations=1))
    body = await read_body(request, limits.max_bytes)
    imported = await asyncio.to_thread(build_import, body, user.id, limits, services.catalog)
    if await mark_missing(services.files, user.id, imported.conversation):
        view = imported.conversation.model_dump_json(exclude={"owner"}).encode()
        imported = dataclasses.replace(imported, view_json=view)
    adds = Adds(1, imported.messages, imported.content_bytes)
    await services.turns.admission.check(user.id, None, adds)
    conv = imported.conversation
    await services.store.bulk.write(conv)
    pipe = services.redis.pipeline(transaction=False)
    storage_usage.queue_add(
        pipe,
        services.settings.keys,
        user.id,
        conversations=1,
        messages=imported.messages,
        nbytes=imported.content_bytes,
    )
    # Listed by the user's other tabs; they load the messages when opened.
    listed = ConversationView(**conv.summary().model_dump())
    queue_feed_event(
        pipe, services.settings.keys, user.id, ConversationCreatedEvent(conversation=listed)
    )
    await pipe.execute()
    return Response(
        imported.view_json, status_code=status.HTTP_201_CREATED, media_type="application/json"
    )
