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


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    """One request, one transaction: committed here after the endpoint returns.

    FastAPI runs this exit code before the response is sent, so a failed commit becomes an
    error response instead of a success the database never saw.
    """
    with transaction(runtime.sessions) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
