"""Process-wide collaborators, built once by the app factory or the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import (
    create_db_engine,
    make_lookup_factory,
    make_session_factory,
    make_snapshot_factory,
)
from backend.core.metrics import Metrics
from backend.core.settings import Settings
from backend.grids.index_registry import GridIndexRegistry
from backend.storage.base import ObjectStore
from backend.storage.factory import build_object_store


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    snapshot_sessions: sessionmaker[Session]
    lookup_sessions: sessionmaker[Session]
    object_store: ObjectStore
    grid_indexes: GridIndexRegistry
    metrics: Metrics = field(default_factory=Metrics)
    # In-process job workers to nudge when new work is queued (embedded profile).
    wakers: list[Callable[[], None]] = field(default_factory=list)

    def wake_worker(self) -> None:
        for wake in self.wakers:
            wake()

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = create_db_engine(settings)
        from backend.audit.service import KEY_INFO, audit_key

        audit = {KEY_INFO: audit_key(settings)}
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine, info=audit),
            read_sessions=make_session_factory(engine, read_only=True),
            snapshot_sessions=make_snapshot_factory(engine),
            lookup_sessions=make_lookup_factory(engine),
            object_store=build_object_store(settings),
            grid_indexes=GridIndexRegistry(tolerance_m=settings.grid_match_tolerance_m),
        )

    def close(self) -> None:
        self.engine.dispose()
