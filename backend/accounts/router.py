"""Login and identity endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from backend.accounts import service
from backend.accounts.deps import CurrentUser
from backend.accounts.schemas import LoginIn, TokenOut, UserOut
from backend.core.deps import SessionDep, SettingsDep
from backend.core.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=PROBLEM_RESPONSES)


@router.post("/token", operation_id="login")
def login(body: LoginIn, session: SessionDep, settings: SettingsDep) -> TokenOut:
    """Exchange a username and password for a short-lived access token."""
    issued = service.login(session, settings, body.username, body.password)
    return TokenOut(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        user=UserOut.model_validate(issued.user),
    )


@router.get("/me", operation_id="whoami")
def whoami(user: CurrentUser) -> UserOut:
    """The account the access token belongs to."""
    return UserOut.model_validate(user)
