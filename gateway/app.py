"""The FastAPI application: built by a factory, clients made in the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.admin import build_parts
from gateway.admin.users import UserAdmin
from gateway.auth import AuthService
from gateway.config import GatewaySettings
from gateway.deps import Services
from gateway.errors import install_handlers
from gateway.hub import SessionHub
from gateway.routes import (
    admin,
    admin_audit,
    admin_jobs,
    admin_ops,
    auth,
    chat,
    collections,
    conversations,
    files,
    health,
    models,
    transfer,
    ws,
)
from gateway.security.client_address import parse_networks
from gateway.security.middleware import SecurityMiddleware, SecurityPolicy
from gateway.security.origin import parse_allowed
from gateway.security.revocation import Revocations
from gateway.security.sessions import SessionOwners
from gateway.security.throttle import SignInThrottle, ThrottleRules
from gateway.static import mount_web
from gateway.turns import TurnService
from shared.conversation import new_id
from shared.files import FileStore
from shared.keys import READER_BLOCK_MS, Keys
from shared.moderation import Moderator
from shared.redis_client import make_redis
from shared.redis_features import RedisFeatureError, require_features
from shared.store import ConversationStore
from shared.store.search import Search

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Build the gateway. Settings are read here (at start-up), not at import."""
    cfg = settings or GatewaySettings()
    catalog = cfg.load_models()
    tools = cfg.load_tools()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = cfg.keys
        gateway_id = new_id()[:12]
        name = f"tidechat-gateway-{gateway_id}"
        redis = make_redis(cfg.redis_url, max_connections=cfg.redis_pool_size, client_name=name)
        await _check_redis(redis, keys)
        # The reader blocks in XREAD: its own single connection, with a socket
        # timeout above the block time.
        reader = make_redis(
            cfg.redis_url, block_ms=READER_BLOCK_MS, max_connections=1, client_name=name
        )
        # Uploaded files' bytes: a client that leaves replies as bytes.
        raw = make_redis(cfg.redis_url, max_connections=4, client_name=name, decode_responses=False)
        hub = SessionHub(
            reader,
            redis,
            keys,
            gateway_id=gateway_id,
            session_ttl=cfg.session_ttl_seconds,
            buffer_bytes=cfg.socket_buffer_bytes,
        )
        parts = build_parts(redis, keys, cfg)
        throttle = SignInThrottle(
            redis,
            keys,
            ThrottleRules(
                account_free=cfg.signin_attempts_per_account,
                address_free=cfg.signin_attempts_per_address,
            ),
        )
        auth_service = AuthService(redis, keys, parts, throttle)
        store = ConversationStore(redis, keys)
        search = Search(redis, keys, store, messages=cfg.search_messages)
        try:
            await search.ensure_index()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("search index not checked (%s); searches create it when missing", exc)
        services = Services(
            settings=cfg,
            redis=redis,
            reader=reader,
            catalog=catalog,
            tools=tools,
            store=store,
            search=search,
            auth=auth_service,
            turns=TurnService(
                redis,
                keys,
                catalog,
                store,
                cfg,
                audit=parts.audit,
                moderator=Moderator(catalog.moderation),
            ),
            admin=parts,
            users=UserAdmin(redis, keys, auth_service, parts),
            hub=hub,
            gateway_id=gateway_id,
            owners=SessionOwners(redis, keys, cfg.session_ttl_seconds),
            # One pub/sub connection, taken from the command pool.
            revocations=Revocations(redis, keys),
            files=FileStore(redis, keys, raw=raw),
            proxies=parse_networks(cfg.trusted_proxies),
        )
        app.state.services = services
        await auth_service.prepare()
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            await parts.accounts.ensure_admin_index()
        await hub.start()
        await services.revocations.start()
        log.info("gateway %s ready", gateway_id)
        try:
            yield
        finally:
            await services.sockets.close_all()
            await services.revocations.stop()
            await hub.stop()
            await reader.aclose()
            await raw.aclose()
            await redis.aclose()

    app = FastAPI(
        title="tidechat",
        version="0.1.0",
        summary="Self-hosted chat: WebSocket gateway over Redis Streams.",
        lifespan=lifespan,
    )
    install_handlers(app)
    app.add_middleware(
        SecurityMiddleware,
        policy=SecurityPolicy(
            max_request_bytes=cfg.max_request_bytes,
            allowed_origins=parse_allowed(cfg.allowed_origins),
            hsts=cfg.cookie_secure,
            route_limits={
                "/api/conversations/import": cfg.import_max_bytes,
                # The file and the multipart envelope around it.
                "/api/files": cfg.max_file_bytes + 64 * 1024,
            },
        ),
    )
    app.include_router(health.router)
    app.include_router(auth.router, prefix="/api/auth", tags=["auth"])
    app.include_router(conversations.router, prefix="/api/conversations", tags=["conversations"])
    app.include_router(transfer.router, prefix="/api/conversations", tags=["conversations"])
    app.include_router(models.router, prefix="/api", tags=["models"])
    app.include_router(admin.router, prefix="/api/admin", tags=["admin"])
    app.include_router(admin_ops.router, prefix="/api/admin", tags=["admin"])
    app.include_router(admin_jobs.router, prefix="/api/admin", tags=["admin"])
    app.include_router(admin_audit.router, prefix="/api/admin", tags=["admin"])
    app.include_router(chat.router, prefix="/api", tags=["chat"])
    app.include_router(files.router, prefix="/api/files", tags=["files"])
    app.include_router(collections.router, prefix="/api/collections", tags=["collections"])
    app.include_router(collections.attach_router, prefix="/api/conversations", tags=["collections"])
    app.include_router(ws.router)
    mount_web(app, cfg.web_dir)
    return app


async def _check_redis(redis: Redis, keys: Keys) -> None:
    """A Redis without JSON or the query engine stops the gateway at start,
    with what to install (a restart does not fix that). An unreachable one does
    not: the gateway starts, ``/ready`` says so, and it serves once Redis is
    there (``/ready`` then reports anything missing, with the reason)."""
    try:
        await require_features(redis, keys)
    except RedisFeatureError as exc:
        log.error("%s", exc)
        await redis.aclose()
        raise
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        log.warning("Redis is not reachable at start (%s); serving /ready until it is", exc)
