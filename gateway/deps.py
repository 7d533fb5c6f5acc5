"""What route handlers receive: the services built in the lifespan, and the
signed-in user, as ``Annotated[..., Depends(...)]`` aliases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from gateway.admin import AdminParts
from gateway.admin.users import UserAdmin
from gateway.auth import COOKIE_NAME, AuthService, token_from
from gateway.config import GatewaySettings
from gateway.errors import ApiError
from gateway.hub import SessionHub
from gateway.security.client_address import Network, scope_client_address
from gateway.security.revocation import Revocations
from gateway.security.sessions import SessionOwners
from gateway.sockets import SocketRegistry
from gateway.turns import TurnService
from shared.files import FileStore
from shared.models_file import ModelCatalog
from shared.protocol import UserInfo
from shared.store import ConversationStore
from shared.store.search import Search
from shared.tools import ToolsFile


@dataclass(eq=False)
class Services:
    settings: GatewaySettings
    redis: Redis
    reader: Redis
    catalog: ModelCatalog
    store: ConversationStore
    search: Search
    auth: AuthService
    turns: TurnService
    hub: SessionHub
    gateway_id: str
    owners: SessionOwners
    revocations: Revocations
    admin: AdminParts
    users: UserAdmin
    files: FileStore
    #: The tools file (``TIDECHAT_TOOLS``): which models have tools.
    tools: ToolsFile = field(default_factory=ToolsFile)
    #: Parsed ``TIDECHAT_TRUSTED_PROXIES``.
    proxies: tuple[Network, ...] = ()
    sockets: SocketRegistry = field(default_factory=SocketRegistry)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def request_token(request: Request) -> str | None:
    return token_from(request.headers.get("authorization"), request.cookies.get(COOKIE_NAME))


def client_address(request: Request, services: ServicesDep) -> str:
    """The caller's address (behind trusted proxies: the client's)."""
    return scope_client_address(request.scope, services.proxies)


ClientAddress = Annotated[str, Depends(client_address)]


#: Routes an account signed in with a one-time password may use before it
#: has chosen its own password.
_BEFORE_OWN_PASSWORD = ("/api/auth/",)


async def current_user(request: Request, services: ServicesDep) -> UserInfo:
    user = await services.auth.user_for_token(
        request_token(request), request.headers.get("user-agent")
    )
    if user is None:
        raise ApiError("unauthorized", "sign in first")
    if user.must_change_password and not request.url.path.startswith(_BEFORE_OWN_PASSWORD):
        raise ApiError("forbidden", "choose your own password first (POST /api/auth/password)")
    return user


CurrentUser = Annotated[UserInfo, Depends(current_user)]


async def admin_user(user: CurrentUser) -> UserInfo:
    """An admin, or 403: every ``/api/admin/...`` route depends on it."""
    if not user.is_admin:
        raise ApiError("forbidden", "only an admin may do this")
    return user


AdminUser = Annotated[UserInfo, Depends(admin_user)]
