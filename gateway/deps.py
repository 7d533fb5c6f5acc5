"""What route handlers receive: the services built in the lifespan, and the
signed-in user, as ``Annotated[..., Depends(...)]`` aliases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

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
    files: FileStore
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


async def current_user(request: Request, services: ServicesDep) -> UserInfo:
    user = await services.auth.user_for_token(
        request_token(request), request.headers.get("user-agent")
    )
    if user is None:
        raise ApiError("unauthorized", "sign in first")
    return user


CurrentUser = Annotated[UserInfo, Depends(current_user)]
