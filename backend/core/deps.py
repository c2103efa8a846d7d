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
# POSTs that only read (their body is a query): on SQLite they must not hold the write lock,
# or every pull would queue behind, and block, pushes.
READ_MOSTLY_PATHS = frozenset({"/api/v1/sync/pull"})


def get_session(
    request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> Iterator[Session]:
    """One request, one transaction: committed here after the endpoint returns.

    Declared with ``scope="function"`` (see ``SessionDep``) so the commit happens before the
    response is sent: a failed commit becomes an error response, never a success the
    database did not keep. Safe methods get a read-only transaction.
    """
    read_only = request.method in SAFE_METHODS or request.url.path in READ_MOSTLY_PATHS
    factory = runtime.read_sessions if read_only else runtime.sessions
    with transaction(factory) as session:
        yield session


def get_snapshot_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    """A second, read-only session reading one consistent snapshot (see make_snapshot_factory)."""
    with transaction(runtime.snapshot_sessions) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SnapshotSessionDep = Annotated[Session, Depends(get_snapshot_session, scope="function")]
