"""SQLite writers of one process queue on a Python lock; the lock never outlives a
transaction, whatever ends it (commit, rollback, an error, an invalidated connection)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import create_db_engine, make_session_factory, transaction
from backend.core.settings import load_settings


@pytest.fixture
def writes(tmp_path: Path) -> sessionmaker[Session]:
    settings = load_settings(
        profile="embedded", var_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/w.sqlite3"
    )
    engine = create_db_engine(settings)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    yield factory
    engine.dispose()


def _count(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return int(session.execute(text("SELECT count(*) FROM t")).scalar_one())


def _insert_quickly(factory: sessionmaker[Session]) -> float:
    started = time.perf_counter()
    with transaction(factory) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
    return time.perf_counter() - started


def test_the_lock_is_released_by_rollback_error_and_invalidation(
    writes: sessionmaker[Session],
) -> None:
    with pytest.raises(RuntimeError), transaction(writes) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("the request failed")
    assert _insert_quickly(writes) < 1.0
    session = writes()
    session.execute(text("INSERT INTO t VALUES (1)"))
    session.connection().invalidate()  # e.g. a broken connection mid-transaction
    session.close()
    assert _insert_quickly(writes) < 1.0
    session = writes()
    session.execute(text("INSERT INTO t VALUES (1)"))
    session.close()  # closed without commit: rolled back
    assert _insert_quickly(writes) < 1.0
    assert _count(writes) == 3  # the three quick inserts; the abandoned ones rolled back


def test_concurrent_writers_all_get_through(writes: sessionmaker[Session]) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(40):
                with transaction(writes) as session:
                    session.execute(text("INSERT INTO t VALUES (1)"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and _count(writes) == 320
