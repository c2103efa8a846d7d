"""Concurrent writers on PostGIS: activations never deadlock, assignment checks cannot race."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date

from sqlalchemy import func, select

from backend.audit.service import KEY_INFO, audit_key
from backend.core.db import create_db_engine, make_session_factory, transaction
from backend.core.settings import load_settings
from backend.grids import service
from backend.grids.errors import AssignmentOverlap
from backend.grids.models import AssigneeKind, GridAssignment, GridVersion
from tests.support.grids import lattice_grids, store_version


def _run_in_threads(count: int, work: Callable[[int], str]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def runner(i: int) -> None:
        barrier.wait()
        result = work(i)
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_activations_serialise(postgis_url: str) -> None:
    settings = load_settings(database_url=postgis_url, database_pool_size=8)
    engine = create_db_engine(settings)
    sessions = make_session_factory(engine, info={KEY_INFO: audit_key(settings)})
    codes, geoms = lattice_grids(2, 2)
    with transaction(sessions) as session:
        versions = [store_version(session, codes, geoms) for _ in range(4)]

    def activate_many(worker: int) -> str:
        rng = random.Random(worker)
        try:
            for _ in range(15):
                with transaction(sessions) as session:
                    service.activate_version(session, rng.choice(versions))
        except Exception as exc:
            return type(exc).__name__
        return "ok"

    assert _run_in_threads(4, activate_many) == Counter({"ok": 4})
    with transaction(sessions) as session:
        active = session.scalar(
            select(func.count()).select_from(GridVersion).where(GridVersion.is_active.is_(True))
        )
    engine.dispose()
    assert active == 1


def test_identical_concurrent_assignments_are_accepted_once(postgis_url: str) -> None:
    settings = load_settings(database_url=postgis_url, database_pool_size=8)
    engine = create_db_engine(settings)
    sessions = make_session_factory(engine, info={KEY_INFO: audit_key(settings)})
    codes, geoms = lattice_grids(2, 2)
    with transaction(sessions) as session:
        service.activate_version(session, store_version(session, codes, geoms))
    new = service.NewAssignment(
        kind=AssigneeKind.person,
        role="网格员",
        assignee_name="张伟",
        effective_from=date(2026, 1, 1),
    )

    def assign(_worker: int) -> str:
        try:
            with transaction(sessions) as session:
                service.assign(session, codes[0], new, actor="test")
        except AssignmentOverlap:
            return "overlap"
        return "created"

    assert _run_in_threads(6, assign) == Counter({"created": 1, "overlap": 5})
    with transaction(sessions) as session:
        rows = session.scalar(select(func.count()).select_from(GridAssignment))
    engine.dispose()
    assert rows == 1
