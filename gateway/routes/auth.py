"""Sign up, log in, log out, who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from gateway.auth import COOKIE_NAME, Credentials, Session
from gateway.deps import CurrentUser, ServicesDep, request_token
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


@router.post("/signup", status_code=status.HTTP_201_CREATED)
async def signup(creds: Credentials, response: Response, services: ServicesDep) -> Session:
    """Create an account (the first one is admin) and sign in."""
    session = await services.auth.signup(creds)
    _set_cookie(response, session.token, services.settings.cookie_secure)
    return session


@router.post("/login")
async def login(creds: Credentials, response: Response, services: ServicesDep) -> Session:
    session = await services.auth.login(creds)
    _set_cookie(response, session.token, services.settings.cookie_secure)
    return session


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, services: ServicesDep) -> Response:
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
    #: Whether a new account can be made now (sign-up open, or no account yet).
    signup_open: bool


@router.get("/status")
async def auth_status(services: ServicesDep) -> AuthStatus:
    has_users = await services.auth.has_users()
    return AuthStatus(has_users=has_users, signup_open=services.auth.signup_open or not has_users)


@router.get("/me")
async def me(user: CurrentUser) -> UserInfo:
    return user
