"""Errors the gateway reports, with the codes of DESIGN.md.

One exception type carries a protocol error code; the HTTP layer maps it to
a status and a JSON body ``{"error": {"code", "message"}}``, the WebSocket
layer to an ``error`` frame. Library exceptions are mapped at the boundary.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.protocol import ErrorCode
from shared.store import ConflictError

log = logging.getLogger(__name__)

HTTP_STATUS: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "unsupported_type": 415,
    "rate_limited": 429,
    "quota_exceeded": 403,
    "storage_full": 507,
    "busy": 503,
    "internal": 500,
}


class ApiError(Exception):
    """``retry_after`` (seconds): when a refused request may succeed (a limit
    or throttle); sent as ``Retry-After`` and in the body."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        current_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or HTTP_STATUS.get(code, 400)
        self.retry_after = retry_after
        #: ``conflict``: where the conversation is now.
        self.current_id = current_id


#: What a user is told when Redis refuses writes (``maxmemory`` reached,
#: ``noeviction``): nothing they do will help, and nothing was saved.
STORAGE_FULL = (
    "the server's storage is full, so nothing new can be saved until an administrator makes room"
)


def is_storage_full(exc: BaseException) -> bool:
    """Redis refused a write: used memory is past ``maxmemory``. (redis-py
    raises OutOfMemoryError; an error relayed from inside a script is a plain
    ResponseError with Redis's own text.)"""
    return isinstance(exc, OutOfMemoryError) or (
        isinstance(exc, ResponseError) and str(exc).startswith("OOM")
    )


def storage_full() -> ApiError:
    return ApiError("storage_full", STORAGE_FULL)


#: What a tab that fell behind is told (``conflict``): nothing was stored.
CONFLICT_MESSAGE = (
    "this conversation has changed since you last saw it (another tab or device added to it); "
    "nothing was sent: catch up, then send again"
)


def raise_write_error(errors: list[Exception | None]) -> None:
    """Raise the first error of a turn's writes (``gateway/once.py``) as the
    user should hear it: storage full, a conversation that moved on
    (``conflict``, with where it is now), else as it came."""
    for error in errors:
        if error is None:
            continue
        if is_storage_full(error):
            raise storage_full() from error
        conflict = ConflictError.from_reply(error)
        if conflict is not None:
            raise ApiError("conflict", CONFLICT_MESSAGE, current_id=conflict.current_id) from error
        raise error


def error_body(
    code: str, message: str, retry_after: int | None = None
) -> dict[str, dict[str, str | int]]:
    error: dict[str, str | int] = {"code": code, "message": message}
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"error": error}


def describe_validation(errors: list[dict[str, object]]) -> str:
    """A short human sentence from pydantic's error list."""
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))  # type: ignore[attr-defined]
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse(
            error_body(str(exc.code), exc.message, exc.retry_after),
            status_code=exc.status,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body("bad_request", describe_validation(list(exc.errors()))), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "bad_request",
            413: "too_large",
        }.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(ResponseError)
    async def _refused(_: Request, exc: ResponseError) -> JSONResponse:
        if is_storage_full(exc):
            log.warning("storage full: a write was refused (%s)", exc)
            error = storage_full()
            return JSONResponse(error_body(error.code, error.message), status_code=error.status)
        log.error("Redis refused a command: %s", exc, exc_info=exc)
        return JSONResponse(error_body("internal", "internal error"), status_code=500)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _storage_down(_: Request, exc: Exception) -> JSONResponse:
        # Redis restarting or failing over: a moment's outage, not a bug (no 500
        # and traceback); the client retries.
        log.warning("storage unavailable: %s", exc)
        body = error_body("internal", "storage is unavailable; try again shortly")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
