"""A conversation as a file: export (the branch on screen as Markdown, or
the whole tree as JSON) and import (a JSON export back in, as a new
conversation). Another user's conversation answers 404, as everywhere."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

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
from gateway.routes.conversations import page_or_404
from shared import storage_usage
from shared.conversation import BranchPage, Conversation, ConversationView, Id, Message
from shared.protocol import ConversationCreatedEvent
from shared.store import NotFoundError
from shared.streams import queue_feed_event
from shared.tools import steps_markdown

router = APIRouter()


async def _owned(services: ServicesDep, cid: str, uid: str) -> Conversation:
    """The whole conversation (exports only: its cost grows with it)."""
    try:
        return await services.store.get_owned(cid, uid)
    except NotFoundError as exc:
        raise ApiError("not_found", "conversation not found") from exc


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
        page = await page_or_404(services, cid, user.id, limit=1)
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
    response_model=BranchPage,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": import_schema()}},
        }
    },
)
async def import_conversation(
    request: Request, user: CurrentUser, services: ServicesDep
) -> BranchPage:
    """A JSON export back in, as a new conversation of the caller's; answers
    its first page, as ``GET`` does (not the whole file again).

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
    adds = Adds(1, imported.messages, imported.content_bytes)
    await services.turns.admission.check(user.id, None, adds)
    conv = imported.conversation
    # Files this deployment does not hold for the importer are marked missing
    # (the text stays); a changed mark means the thread's encoding is stale.
    changed = await mark_missing(services.files, user.id, conv)
    await services.store.bulk.write(conv, encoded=None if changed else imported.encoded)
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
    return await page_or_404(services, conv.id, user.id)
