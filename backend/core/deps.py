"""FastAPI dependencies shared by every domain router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend.core.db import transaction
from backend.core.runtime import Runtime
from backend.core.settings import Settings


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Settings:
    return runtime.settings


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(
    request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> Iterator[Session]:
    """One request, one transaction: committed here after the endpoint returns.

    Declared with ``scope="function"`` (see ``SessionDep``) so the commit happens before the
    response is sent: a failed commit becomes an error response, never a success the
    database did not keep. Safe methods get a read-only transaction.
    """
    factory = runtime.read_sessions if request.method in SAFE_METHODS else runtime.sessions
    with transaction(factory) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
