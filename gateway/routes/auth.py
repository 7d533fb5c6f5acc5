"""Sign up, log in, log out, who am I; change the password; list and end
sign-ins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, Field

from gateway.auth import COOKIE_NAME, Credentials, PasswordChange, Session, SignupRequest
from gateway.config import SignupMode
from gateway.deps import ClientAddress, CurrentUser, ServicesDep, request_token
from gateway.errors import ApiError
from gateway.security.signins import SignInView, token_hash
from shared.keys import AUTH_TOKEN_TTL_S
from shared.protocol import UserInfo

router = APIRouter()


def _set_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=AUTH_TOKEN_TTL_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def _signed_in_token(request: Request) -> str:
    token = request_token(request)
    if token is None:  # CurrentUser already refused it; for the type checker
        raise ApiError("unauthorized", "sign in first")
    return token


@router.post("/signup", status_code=status.HTTP_201_CREATED)
async def signup(
    creds: SignupRequest,
    request: Request,
    response: Response,
    services: ServicesDep,
    address: ClientAddress,
) -> Session:
    """Create an account (the first one is admin) and sign in. Whether anyone
    may is the sign-up mode's call: open, invite-only (``invite``: the token
    of an invite link) or closed."""
    session = await services.auth.signup(
        creds, address=address, user_agent=request.headers.get("user-agent")
    )
    _set_cookie(response, session.token, services.settings.cookie_secure)
    return session


@router.post(
    "/login",
    responses={429: {"description": "too many attempts for this account or address"}},
)
async def login(
    creds: Credentials,
    request: Request,
    response: Response,
    services: ServicesDep,
    address: ClientAddress,
) -> Session:
    session = await services.auth.login(
        creds, address=address, user_agent=request.headers.get("user-agent")
    )
    _set_cookie(response, session.token, services.settings.cookie_secure)
    return session


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, services: ServicesDep) -> Response:
    """End this sign-in, here and on every socket and stream that uses it."""
    token = request_token(request)
    if token:
        await services.auth.logout(token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


class AuthStatus(BaseModel):
    """What the sign-in page needs before anyone has signed in."""

    #: False on a fresh install: the page opens on sign-up (the first account is admin).
    has_users: bool
    #: Whether anyone can make an account now (sign-up open, or no account yet).
    signup_open: bool
    #: open, invite_only (an invite link is needed) or closed: what the
    #: sign-in page tells people.
    signup_mode: SignupMode


@router.get("/status")
async def auth_status(services: ServicesDep) -> AuthStatus:
    has_users = await services.auth.has_users()
    mode = await services.auth.signup_mode()
    return AuthStatus(
        has_users=has_users,
        signup_open=mode == "open" or not has_users,
        signup_mode=mode if has_users else "open",
    )


class InviteToken(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=256)]


class InviteInfo(BaseModel):
    """What the invite page shows before the account is made."""

    #: The username the invite is for (None: the invitee chooses).
    username: str | None
    expires_at: float


@router.post("/invite", responses={404: {"description": "no such invite (used or expired)"}})
async def invite_info(body: InviteToken, services: ServicesDep) -> InviteInfo:
    """Look an invite link up (its token travels in the body, not a URL)."""
    invite = await services.admin.invites.peek(body.token)
    if invite is None:
        raise ApiError("not_found", "this invite link does not work any more (used or expired)")
    return InviteInfo(username=invite.username, expires_at=invite.expires_at)


@router.get("/me")
async def me(user: CurrentUser) -> UserInfo:
    return user


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    change: PasswordChange,
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    address: ClientAddress,
) -> Response:
    """Set a new password; every other sign-in of the account ends (this one stays)."""
    await services.auth.change_password(user, _signed_in_token(request), change, address=address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class SignInList(BaseModel):
    sessions: list[SignInView]


@router.get("/sessions")
async def list_sessions(request: Request, user: CurrentUser, services: ServicesDep) -> SignInList:
    """Where the account is signed in, most recently used first."""
    current = token_hash(_signed_in_token(request))
    records = await services.admin.signins.records(user.id)
    views = [
        SignInView(**record.model_dump(), current=digest == current)
        for digest, record in records.items()
    ]
    views.sort(key=lambda v: v.last_used_at, reverse=True)
    return SignInList(sessions=views)


@router.delete("/sessions/{sign_in_id}", status_code=status.HTTP_204_NO_CONTENT)
async def end_session(
    sign_in_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
) -> Response:
    """End one sign-in (its sockets and streams close at once). Ending the
    caller's own is a log-out."""
    ended = await services.admin.signins.revoke_public_id(user.id, sign_in_id)
    if ended is None:
        raise ApiError("not_found", "no such sign-in")
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if ended == token_hash(_signed_in_token(request)):
        response.delete_cookie(COOKIE_NAME, path="/")
    return response
