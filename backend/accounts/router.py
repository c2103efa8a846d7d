"""Login and identity endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.accounts import service, throttle
from backend.accounts.deps import AdminUser, CurrentUser
from backend.accounts.schemas import (
    LoginIn,
    TokenOut,
    UnitIn,
    UserAdminOut,
    UserCreate,
    UserList,
    UserOut,
)
from backend.core.deps import RuntimeDep, SessionDep
from backend.core.params import IdPath
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1", tags=["auth"], responses=PROBLEM_RESPONSES
)


@router.post("/auth/token", operation_id="login", responses=throttle.TOO_MANY_ATTEMPTS_RESPONSE)
def login(body: LoginIn, request: Request, runtime: RuntimeDep) -> TokenOut:
    """Exchange a username and password for a short-lived access token.

    Failed attempts are limited per username and per client address (429
    `too_many_attempts` with `Retry-After`; docs/security.md)."""
    client = throttle.client_address(request.client.host if request.client else None)
    issued = service.login(runtime, body.username, body.password, client)
    return TokenOut(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        user=UserOut.model_validate(issued.user),
    )


@router.get("/auth/me", operation_id="whoami")
def whoami(user: CurrentUser) -> UserOut:
    """The account the access token belongs to."""
    return UserOut.model_validate(user)


@router.post("/users", operation_id="createUser", status_code=201, tags=["users"])
def create_user(body: UserCreate, session: SessionDep, admin: AdminUser) -> UserAdminOut:
    """Create an account (inspectors then enroll their phones with an enrollment code)."""
    user = service.create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        phone=body.phone,
        unit_code=body.unit_code,
        actor=admin.username,
    )
    return UserAdminOut.model_validate(user)


@router.get("/users", operation_id="listUsers", tags=["users"])
def list_users(session: SessionDep, _admin: AdminUser) -> UserList:
    """Every account, by username."""
    return UserList(items=[UserAdminOut.model_validate(u) for u in service.list_users(session)])


@router.post("/users/{user_id}/unit", operation_id="setUserUnit", tags=["users"])
def set_unit(user_id: IdPath, body: UnitIn, session: SessionDep, admin: AdminUser) -> UserAdminOut:
    """Set the org unit a command-centre user works on (null: city-wide)."""
    return UserAdminOut.model_validate(
        service.set_unit(session, user_id, body.unit_code, admin.username)
    )


@router.post("/users/{user_id}/deactivate", operation_id="deactivateUser", tags=["users"])
def deactivate(user_id: IdPath, session: SessionDep, admin: AdminUser) -> UserAdminOut:
    """Deactivate an account: its tokens and devices stop working on their next request."""
    return UserAdminOut.model_validate(service.deactivate(session, user_id, admin.username))
