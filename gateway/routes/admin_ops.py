"""``/api/admin/...``: groups, model access, quotas and usage. Admin only,
like ``admin.py`` (the audit log: ``admin_audit.py``; retention: ``admin_jobs.py``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field

from gateway.admin.quotas import EffectiveLimit, QuotaSettings
from gateway.admin.usage import DayUsage
from gateway.deps import AdminUser, ClientAddress, ServicesDep
from gateway.errors import ApiError
from gateway.routes.admin import UserId
from shared.access import effective_groups
from shared.audit import Party
from shared.groups import GroupConfig
from shared.models_file import GROUP_PATTERN, GroupName
from shared.protocol import UserInfo

router = APIRouter()

Group = Annotated[str, Path(pattern=GROUP_PATTERN)]


def _actor(admin: UserInfo) -> Party:
    return Party(id=admin.id, name=admin.username)


# --- groups ------------------------------------------------------------------------


class GroupView(GroupConfig):
    members: int = 0


class GroupList(BaseModel):
    groups: list[GroupView]


class GroupPatch(BaseModel):
    description: Annotated[str, Field(max_length=300)] | None = None
    #: Daily quotas of the members (null: the group sets none; 0: no limit).
    tokens_day: Annotated[int, Field(ge=0)] | None = None
    turns_day: Annotated[int, Field(ge=0)] | None = None
    retention_days: Annotated[int, Field(ge=1, le=36_500)] | None = None
    retention_on: bool | None = None


@router.get("/groups")
async def list_groups(_: AdminUser, services: ServicesDep) -> GroupList:
    groups = await services.admin.groups.all()
    counts = await services.admin.groups.member_counts(list(groups))
    return GroupList(
        groups=[GroupView(**g.model_dump(), members=counts[name]) for name, g in groups.items()]
    )


@router.post("/groups", status_code=status.HTTP_201_CREATED)
async def create_group(
    body: GroupConfig, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> GroupConfig:
    if not await services.admin.groups.create(body):
        raise ApiError("bad_request", f"there is already a group {body.name!r}", status=409)
    await services.admin.audit.record(
        "group.created", actor=_actor(admin), address=address, group=body.name
    )
    return body


@router.patch("/groups/{name}")
async def patch_group(
    name: Group, body: GroupPatch, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> GroupConfig:
    """Change a group; a change of its quotas applies to its members at once."""
    group = await services.admin.groups.get(name)
    if group is None:
        raise ApiError("not_found", "no such group")
    changes = body.model_dump(exclude_unset=True)
    updated = GroupConfig.model_validate({**group.model_dump(), **changes})
    await services.admin.groups.save(updated)
    if {"tokens_day", "turns_day"} & set(changes):
        await services.admin.quotas.recompute(await services.admin.groups.members(name))
    await services.admin.audit.record(
        "group.changed", actor=_actor(admin), address=address, group=name, fields=sorted(changes)
    )
    return updated


@router.delete("/groups/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_group(
    name: Group, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> None:
    if await services.admin.groups.get(name) is None:
        raise ApiError("not_found", "no such group")
    members = await services.admin.groups.delete(name)
    await services.admin.quotas.recompute(members)
    await services.admin.audit.record(
        "group.deleted", actor=_actor(admin), address=address, group=name
    )


@router.put("/groups/{name}/members/{uid}", status_code=status.HTTP_204_NO_CONTENT)
async def add_member(
    name: Group, uid: UserId, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> None:
    await _member(services, admin, name, uid, address, add=True)


@router.delete("/groups/{name}/members/{uid}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    name: Group, uid: UserId, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> None:
    await _member(services, admin, name, uid, address, add=False)


async def _member(
    services: ServicesDep, admin: UserInfo, name: str, uid: str, address: str, *, add: bool
) -> None:
    if await services.admin.groups.get(name) is None:
        raise ApiError("not_found", "no such group")
    record = await services.admin.accounts.record(uid)
    if not record:
        raise ApiError("not_found", "no such user")
    groups = services.admin.groups
    await (groups.add_member(name, uid) if add else groups.remove_member(name, uid))
    await services.admin.quotas.recompute([uid])
    await services.admin.audit.record(
        "group.member_added" if add else "group.member_removed",
        actor=_actor(admin),
        target=Party(id=uid, name=record.get("username", "")),
        address=address,
        group=name,
    )


# --- model access ----------------------------------------------------------------------


class ModelAccessView(BaseModel):
    id: str
    label: str
    #: Who may use it (empty: everyone).
    groups: list[str]
    #: Whether the console's setting or the models file's decides.
    source: Literal["console", "models file"]


class ModelAccessList(BaseModel):
    models: list[ModelAccessView]


class AccessChange(BaseModel):
    #: The groups allowed ([]: everyone); null: back to the models file's.
    groups: list[GroupName] | None


@router.get("/models")
async def model_access(_: AdminUser, services: ServicesDep) -> ModelAccessList:
    overrides = await services.admin.access.overrides()
    return ModelAccessList(
        models=[
            ModelAccessView(
                id=m.id,
                label=m.display_name,
                groups=effective_groups(m, overrides.get(m.id)),
                source="console" if m.id in overrides else "models file",
            )
            for m in services.catalog.models
        ]
    )


@router.put("/models/{model_id}/access", status_code=status.HTTP_204_NO_CONTENT)
async def set_model_access(
    model_id: Annotated[str, Path(max_length=128)],
    body: AccessChange,
    admin: AdminUser,
    services: ServicesDep,
    address: ClientAddress,
) -> None:
    """Restrict a model to groups; every gateway applies it to the next turn."""
    if model_id not in services.catalog.by_id:
        raise ApiError("not_found", "no such model")
    known = await services.admin.groups.all()
    unknown = [g for g in body.groups or [] if g not in known]
    if unknown:
        raise ApiError("bad_request", f"no such group: {', '.join(unknown)}")
    await services.admin.access.set_override(model_id, body.groups)
    await services.admin.audit.record(
        "model.access_changed",
        actor=_actor(admin),
        address=address,
        model=model_id,
        groups=body.groups,
    )


# --- quotas and usage ------------------------------------------------------------------


class QuotaView(BaseModel):
    own: QuotaSettings
    effective: dict[str, EffectiveLimit]


@router.get("/users/{uid}/quotas")
async def get_quotas(uid: UserId, _: AdminUser, services: ServicesDep) -> QuotaView:
    if not await services.admin.accounts.record(uid):
        raise ApiError("not_found", "no such user")
    quotas = services.admin.quotas
    return QuotaView(own=await quotas.own(uid), effective=await quotas.effective(uid))


@router.put("/users/{uid}/quotas")
async def set_quotas(
    uid: UserId,
    body: QuotaSettings,
    admin: AdminUser,
    services: ServicesDep,
    address: ClientAddress,
) -> QuotaView:
    """The user's own quotas (null: inherit from their groups or the defaults)."""
    record = await services.admin.accounts.record(uid)
    if not record:
        raise ApiError("not_found", "no such user")
    quotas = services.admin.quotas
    await quotas.set_own(uid, body)
    await services.admin.audit.record(
        "user.quota_changed",
        actor=_actor(admin),
        target=Party(id=uid, name=record.get("username", "")),
        address=address,
        **{k: v for k, v in body.model_dump().items() if v is not None},
    )
    return QuotaView(own=await quotas.own(uid), effective=await quotas.effective(uid))


class UsageChart(BaseModel):
    days: list[DayUsage]


@router.get("/usage")
async def usage(
    _: AdminUser,
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=31)] = 30,
    user: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
) -> UsageChart:
    """Turns and tokens per model per UTC day: everyone's, or one user's."""
    reader = services.admin.usage
    rows = await (reader.user_days(user, days) if user else reader.total_days(days))
    return UsageChart(days=rows)
