"""The caller's conversations: list and search, create, read, change,
delete (export and import: ``transfer.py``). Another user's conversation
answers 404, exactly like a missing one, so ids cannot be probed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.admission import Adds
from gateway.deps import CurrentUser, ServicesDep
from gateway.errors import ApiError
from shared import storage_usage
from shared.collections import CollectionStore
from shared.conversation import (
    BranchPage,
    BranchSwitch,
    ConversationView,
    Id,
    SearchHit,
)
from shared.keys import PAGE_MAX_MESSAGES, PAGE_MESSAGES
from shared.models_file import UnknownModelError
from shared.protocol import ConversationCreatedEvent, ConversationDeletedEvent, TitleEvent
from shared.store import TITLE_MAX_CHARS, MessageNotFoundError, NotFoundError
from shared.streams import publish_feed_event, queue_feed_event

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


async def page_or_404(
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
    return await page_or_404(services, cid, user.id, leaf, limit)


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
    return await page_or_404(services, cid, user.id)


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
