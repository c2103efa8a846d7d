"""Authentication and role checks as FastAPI dependencies.

A token is either a user's (password login, for the command centre) or a device's (an enrolled
phone). Both resolve to the live user; a device token also to the live, unrevoked device.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from backend.accounts import service
from backend.accounts.errors import DeviceTokenRequired
from backend.accounts.models import Role, User
from backend.core.db import transaction
from backend.core.deps import RuntimeDep
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
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, read by one statement outside the request's transaction
    (``Runtime.lookup_sessions``: no BEGIN/COMMIT on PostgreSQL).

    Why not in the request's transaction: FastAPI runs each sync dependency and the endpoint
    in separate thread-pool calls. A transaction opened here would hold its connection (and
    any lock) while the request waits for a thread for its next step, and threads blocked
    on the exhausted pool would wait for those very connections: under load that is a
    deadlock until the pool timeout. So the request's own transaction starts in the
    endpoint's thread, and nothing is held across a thread hop. The same holds for
    endpoints that receive photo bytes: no connection is held while a slow phone sends.

    User and device come back detached (loaded columns only), which is all callers read.
    Push re-reads the device under its lock, so a revocation committed after this read still
    stops it (sync/push.py).
    """
    with transaction(runtime.lookup_sessions) as session:
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
    if claims.device_id is None:
        return Principal(service.user_for_claims(session, claims), None)
    return Principal(*devices.user_and_device(session, claims))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(current_user)]


async def current_device(principal: CurrentPrincipal) -> Principal:
    if principal.device is None:
        raise DeviceTokenRequired("sync needs a device token: enroll the device first")
    return principal


CurrentDevice = Annotated[Principal, Depends(current_device)]


def require_roles(*roles: Role) -> Callable[[User], Awaitable[User]]:
    allowed = {r.value for r in roles}

    async def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Forbidden(
                f"role {user.role} may not do this; needs one of {', '.join(sorted(allowed))}"
            )
        return user

    return check


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
