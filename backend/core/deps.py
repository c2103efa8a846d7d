"""FastAPI dependencies shared by every domain router."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from backend.core.runtime import Runtime
from backend.core.settings import Settings


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Settings:
    return runtime.settings


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that only read (their body is a query): on SQLite they must not hold the write lock,
# or every pull would queue behind, and block, pushes.
READ_MOSTLY_PATHS = frozenset({"/api/v1/sync/pull"})


async def get_session(
    request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> AsyncIterator[Session]:
    """One request, one transaction: committed here after the endpoint returns.

    Declared with ``scope="function"`` (see ``SessionDep``) so the commit happens before the
    response is sent: a failed commit becomes an error response, never a success the
    database did not keep. Safe methods get a read-only transaction.

    The session is made here without touching the database; its connection is taken by the
    endpoint's first query, in the endpoint's thread, so no connection waits idle for a
    thread (see ``accounts.deps.current_principal``).
    """
    read_only = request.method in SAFE_METHODS or request.url.path in READ_MOSTLY_PATHS
    factory = runtime.read_sessions if read_only else runtime.sessions
    async with _transaction(factory) as session:
        yield session


async def get_snapshot_session(
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> AsyncIterator[Session]:
    """A second, read-only session reading one consistent snapshot (see make_snapshot_factory)."""
    async with _transaction(runtime.snapshot_sessions) as session:
        yield session


@asynccontextmanager
async def _transaction(factory: sessionmaker[Session]) -> AsyncIterator[Session]:
    session = factory()
    try:
        yield session
    except BaseException:
        await _finish(session.rollback, session.close)
        raise
    await _finish(session.commit, session.close)


async def _finish(end: Callable[[], None], close: Callable[[], None]) -> None:
    """Commit or roll back in a thread that needs no thread-pool token, and even if the
    request is being cancelled: a transaction holding locks must never wait behind requests
    that may be waiting for those locks, nor be left open."""

    def run() -> None:
        try:
            end()
        finally:
            close()

    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(run, limiter=anyio.CapacityLimiter(1))


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SnapshotSessionDep = Annotated[Session, Depends(get_snapshot_session, scope="function")]
