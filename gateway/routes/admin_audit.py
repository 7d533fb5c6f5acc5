"""``/api/admin/...``: the audit log (read, filtered, exported as JSON lines)
and what the moderation hook flagged. Admin only, like ``admin.py``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from gateway.deps import AdminUser, ServicesDep
from shared.audit import AuditEntry, AuditFilter
from shared.moderation_log import FlaggedItem

router = APIRouter()


# --- audit log and flagged messages ------------------------------------------------------


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    #: Pass as ``before`` for older entries (null: no more).
    next: str | None


def _filter(
    kind: Annotated[str | None, Query(max_length=200)] = None,
    category: Literal["security", "admin"] | None = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditFilter:
    """The query's filter: ``kind`` is kinds or prefixes (``signin.``),
    comma-separated; ``user`` a user id or name."""
    kinds = [k.strip() for k in (kind or "").split(",") if k.strip()]
    return AuditFilter(kinds=kinds, category=category, user=user or None)


AuditQuery = Annotated[AuditFilter, Depends(_filter)]


EntryId = Annotated[str | None, Query(pattern=r"^\d{1,20}-\d{1,20}$")]


@router.get("/audit")
async def audit(
    _: AdminUser,
    services: ServicesDep,
    filt: AuditQuery,
    before: EntryId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Newest first; ``kind``: kinds or prefixes (``signin.``), comma-separated."""
    entries, cursor = await services.admin.audit.read(filt, before=before, limit=limit)
    return AuditPage(entries=entries, next=cursor)


@router.get("/audit/export", response_class=PlainTextResponse)
async def audit_export(
    _: AdminUser,
    services: ServicesDep,
    filt: AuditQuery,
) -> PlainTextResponse:
    """The matching entries as JSON lines, newest first."""
    entries = await services.admin.audit.entries(filt)
    body = "".join(e.model_dump_json() + "\n" for e in entries)
    return PlainTextResponse(
        body,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="tidechat-audit.jsonl"'},
    )


class FlagPage(BaseModel):
    #: The moderation hook's configuration (no secrets), null: off.
    config: dict[str, object] | None
    items: list[FlaggedItem]
    next: str | None


@router.get("/moderation")
async def moderation(
    _: AdminUser,
    services: ServicesDep,
    before: EntryId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FlagPage:
    """What the moderation hook blocked, newest first."""
    items, cursor = await services.admin.flags.list(before=before, limit=limit)
    config = services.catalog.moderation
    return FlagPage(
        config=config.summary() if config is not None else None, items=items, next=cursor
    )
