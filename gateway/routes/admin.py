"""``/api/admin/...``: accounts, invites and the sign-up mode. Every route
depends on ``AdminUser`` (403 for anyone else, 401 without a sign-in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel

from gateway.admin.invites import Invite
from gateway.admin.listing import UserPage
from gateway.admin.users import Created, NewUser
from gateway.config import SignupMode
from gateway.deps import AdminUser, ClientAddress, ServicesDep
from gateway.errors import ApiError
from shared.audit import Party

router = APIRouter()

UserId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


@router.get("/users")
async def list_users(
    _: AdminUser,
    services: ServicesDep,
    q: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> UserPage:
    """Accounts by name (``q``: part of it), with their last activity and
    this month's turns and tokens."""
    return await services.users.list(q, offset, limit)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(
    body: NewUser, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> Created:
    """An account with a one-time password, or an invite link (shown once)."""
    return await services.users.create(admin, body, address)


class UserPatch(BaseModel):
    #: Disable (sockets end at once, sign-in refused) or enable the account.
    disabled: bool | None = None
    #: Make or unmake an admin (there is always at least one).
    is_admin: bool | None = None


@router.patch("/users/{uid}", status_code=status.HTTP_204_NO_CONTENT)
async def patch_user(
    uid: UserId, body: UserPatch, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> None:
    if body.disabled is not None:
        await services.users.set_disabled(admin, uid, body.disabled, address)
    if body.is_admin is not None:
        await services.users.set_admin(admin, uid, body.is_admin, address)


class DeletedUser(BaseModel):
    conversations: int


@router.delete("/users/{uid}")
async def delete_user(
    uid: UserId, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> DeletedUser:
    """Delete the account and all its conversations, usage and settings:
    irreversible."""
    return DeletedUser(conversations=await services.users.delete(admin, uid, address))


class NewPassword(BaseModel):
    #: The one-time password, shown once: the user chooses their own at sign-in.
    password: str


@router.post("/users/{uid}/password")
async def reset_password(
    uid: UserId, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> NewPassword:
    """A new one-time password; every sign-in of the account ends."""
    return NewPassword(password=await services.users.reset_password(admin, uid, address))


class InviteList(BaseModel):
    invites: list[Invite]


@router.get("/invites")
async def list_invites(_: AdminUser, services: ServicesDep) -> InviteList:
    return InviteList(invites=[i for _, i in await services.admin.invites.list()])


@router.delete("/invites/{invite_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invite(
    invite_id: Annotated[str, Path(max_length=64)],
    admin: AdminUser,
    services: ServicesDep,
    address: ClientAddress,
) -> None:
    invite = await services.admin.invites.revoke(invite_id)
    if invite is None:
        raise ApiError("not_found", "no such invite (used or expired)")
    await services.admin.audit.record(
        "invite.revoked",
        actor=Party(id=admin.id, name=admin.username),
        address=address,
        invite=invite.id,
    )


class RuntimeSettingsView(BaseModel):
    signup_mode: SignupMode


@router.get("/settings")
async def get_settings(_: AdminUser, services: ServicesDep) -> RuntimeSettingsView:
    return RuntimeSettingsView(signup_mode=await services.admin.runtime.signup_mode())


@router.put("/settings")
async def put_settings(
    body: RuntimeSettingsView, admin: AdminUser, services: ServicesDep, address: ClientAddress
) -> RuntimeSettingsView:
    """Change the sign-up mode for every gateway at once."""
    before = await services.admin.runtime.signup_mode()
    await services.admin.runtime.set_signup_mode(body.signup_mode)
    if before != body.signup_mode:
        await services.admin.audit.record(
            "signup.mode_changed",
            actor=Party(id=admin.id, name=admin.username),
            address=address,
            before=before,
            after=body.signup_mode,
        )
    return body
