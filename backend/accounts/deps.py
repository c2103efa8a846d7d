"""Authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.accounts import service
from backend.accounts.models import Role, User
from backend.core.deps import SessionDep, SettingsDep
from backend.core.errors import Forbidden, Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/token")


def current_user(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "send an access token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return service.user_for_token(session, settings, credentials.credentials)


CurrentUser = Annotated[User, Depends(current_user)]


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
