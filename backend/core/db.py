"""Engine and session handling for both profiles.

One request (or one CLI/background job) is one transaction: :func:`transaction` opens a
session, hands it to the caller and commits once at the end. Services and repositories only
``flush()``; they never commit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import QueuePool

from backend.core.settings import Settings

# Stable constraint names so Alembic migrations are reproducible on both dialects.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


BUSY_TIMEOUT_S = 10


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a CLI import writes; foreign keys are off by default in
    # SQLite; busy_timeout turns brief lock contention into waiting instead of errors.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY = "xuncha_read_only"


_WRITER_LOCK_HELD = "xuncha_writer_lock_held"


def _sqlite_transactions(engine: Engine) -> None:
    """BEGIN IMMEDIATE for writers, queued on a lock of this process first.

    Writers take SQLite's write lock up front: with a deferred BEGIN two writers can both read
    and then one fails on the lock upgrade ("database is locked", which busy_timeout cannot
    help in WAL mode). Read-only transactions keep a deferred BEGIN, so in WAL mode they never
    wait for a writer.

    Writers of one process queue on a Python lock before that: SQLite's own busy handler
    polls with sleeps growing to 100 ms, so concurrent short writes (upload chunks) waited
    many times longer than they took. The lock is released when the connection returns to
    the pool, after its COMMIT or ROLLBACK. Other processes still meet SQLite's lock and
    busy_timeout.
    """
    writers = threading.Lock()

    def begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN")
            return
        if not writers.acquire(timeout=BUSY_TIMEOUT_S):
            # What SQLite itself says after busy_timeout, so callers treat it alike (retry, 503).
            raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked"))
        # record_info, not info: it survives the connection's invalidation.
        conn.connection.record_info[_WRITER_LOCK_HELD] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            conn.connection.record_info.pop(_WRITER_LOCK_HELD, None)
            writers.release()
            raise

    def release(_dbapi_connection: Any, record: Any, *_exc: Any) -> None:
        if record is not None and record.record_info.pop(_WRITER_LOCK_HELD, False):
            writers.release()

    event.listen(engine, "begin", begin)
    event.listen(engine, "checkin", release)
    event.listen(engine, "invalidate", release)


def create_db_engine(settings: Settings) -> Engine:
    """Engine for the configured profile, with the dialect's safety settings applied."""
    if settings.is_sqlite:
        path = settings.url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            settings.url,
            echo=settings.database_echo,
            hide_parameters=True,  # no values (password hashes, secrets' digests) in logs/errors
            connect_args={"check_same_thread": False, "isolation_level": None},
            # Pooled: opening a connection (file open + four PRAGMAs) cost more than the
            # short transactions of an upload chunk themselves. Threads share the pool;
            # each connection is used by one thread at a time.
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=24,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        _sqlite_transactions(engine)
        return engine
    return create_engine(
        settings.url,
        echo=settings.database_echo,
        hide_parameters=True,  # no values (password hashes, secrets' digests) in logs/errors
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_s,
        pool_pre_ping=True,
    )


def make_session_factory(
    engine: Engine, *, read_only: bool = False, info: dict[str, Any] | None = None
) -> sessionmaker[Session]:
    """Sessions for writing, or for reading only (SQLite: no write lock is taken).

    ``info`` is copied into every session's ``info`` (e.g. the audit log's key).
    """
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return _holding(
        sessionmaker(bind=bind, expire_on_commit=False, autoflush=False, info=info or {})
    )


def make_lookup_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for one read statement, such as the caller's user and device on every request.

    PostgreSQL: autocommit (one statement is its own snapshot), which saves the BEGIN and
    COMMIT round trips. SQLite: a read-only transaction (a deferred BEGIN costs nothing).
    """
    if engine.dialect.name == "postgresql":
        bind = engine.execution_options(isolation_level="AUTOCOMMIT")
        return sessionmaker(bind=bind, expire_on_commit=False, autoflush=False)
    return make_session_factory(engine, read_only=True)


def make_snapshot_factory(engine: Engine) -> sessionmaker[Session]:
    """Read-only sessions whose every query sees one snapshot.

    PostgreSQL: REPEATABLE READ (READ COMMITTED would give each statement its own snapshot).
    SQLite: a deferred read transaction in WAL mode is already one snapshot.
    """
    if engine.dialect.name == "postgresql":
        bind = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        return _holding(sessionmaker(bind=bind, expire_on_commit=False, autoflush=False))
    return make_session_factory(engine, read_only=True)


_HELD = "xuncha_held_objects"


def _holding(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions that keep every object they load until they close.

    The identity map holds objects weakly: a category, device or report a function looked up
    and let go is forgotten, and the next ``session.get`` of it in the same request queries
    again (a push read one category three times). A request's session is short-lived, so
    holding what it loaded costs little memory and saves those round trips.
    """

    def hold(session: Session, instance: object) -> None:
        session.info.setdefault(_HELD, set()).add(instance)

    def release(session: Session, instance: object) -> None:
        session.info.get(_HELD, set()).discard(instance)

    for name in ("pending_to_persistent", "loaded_as_persistent", "detached_to_persistent"):
        event.listen(factory, name, hold)
    for name in ("persistent_to_detached", "persistent_to_deleted", "persistent_to_transient"):
        event.listen(factory, name, release)
    return factory


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits once at the end, or rolls back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
