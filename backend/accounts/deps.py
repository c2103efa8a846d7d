"""Authentication and role checks as FastAPI dependencies.

A token is either a user's (password login, for the command centre) or a device's (an enrolled
phone). Both resolve to the live user; a device token also to the live, unrevoked device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from backend.accounts import service
from backend.accounts.errors import DeviceTokenRequired
from backend.accounts.models import Role, User
from backend.core.db import transaction
from backend.core.deps import RuntimeDep, SessionDep, SettingsDep
from backend.core.errors import Forbidden, Unauthenticated
from backend.core.settings import Settings
from backend.devices import service as devices
from backend.devices.models import Device

_bearer = HTTPBearer(
    auto_error=False,
    description="Access token from POST /api/v1/auth/token or POST /api/v1/devices/token",
)


@dataclass(frozen=True)
class Principal:
    user: User
    device: Device | None


def current_principal(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return resolve_principal(session, settings, credentials)


def streaming_principal(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """For endpoints that receive photo bytes: authenticated in a short read transaction of
    its own, so no database connection (PostgreSQL pool) or lock (SQLite) is held while a
    phone on a slow network sends its body. The endpoint opens its own short transactions."""
    with transaction(runtime.read_sessions) as session:
        return resolve_principal(session, runtime.settings, credentials)


def resolve_principal(
    session: Session,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "send an access token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    claims = service.claims_of(settings, credentials.credentials)
    user = service.user_for_claims(session, claims)
    device = None
    if claims.device_id is not None:
        device = devices.active_device(session, claims.device_id, user.id)
    return Principal(user, device)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
StreamingPrincipal = Annotated[Principal, Depends(streaming_principal)]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(current_user)]


def current_device(principal: CurrentPrincipal) -> Principal:
    if principal.device is None:
        raise DeviceTokenRequired("sync needs a device token: enroll the device first")
    return principal


CurrentDevice = Annotated[Principal, Depends(current_device)]


def require_roles(*roles: Role) -> Callable[[User], User]:
    allowed = {r.value for r in roles}

    def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Forbidden(
                f"role {user.role} may not do this; needs one of {', '.join(sorted(allowed))}"
            )
        return user

    return check


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
