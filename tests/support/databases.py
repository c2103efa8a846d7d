"""Test databases built only by the Alembic migrations, cloned per test.

* embedded: one migrated SQLite file per session, copied for each test;
* production: one migrated PostGIS template database per xdist worker, and
  ``CREATE DATABASE ... TEMPLATE`` for each test (fast, and isolation is total).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from backend.core import migrate
from backend.core.db import create_db_engine
from backend.core.settings import load_settings


def worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def build_sqlite_template(directory: Path) -> Path:
    path = directory / "template.sqlite3"
    engine = create_db_engine(load_settings(database_url=f"sqlite:///{path}"))
    migrate.upgrade(engine)
    engine.dispose()
    return path


def clone_sqlite(template: Path, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "xuncha.sqlite3"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def _admin_engine(admin_url: str):  # type: ignore[no-untyped-def]
    return create_engine(admin_url, isolation_level="AUTOCOMMIT")


def database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    engine = _admin_engine(admin_url)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    engine.dispose()
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    engine = _admin_engine(admin_url)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def build_postgis_template(admin_url: str) -> str:
    """A migrated database other databases are cloned from; returns its name."""
    name = f"xuncha_template_{worker_suffix()}"
    url = create_database(admin_url, name)
    engine = create_db_engine(load_settings(database_url=url))
    migrate.upgrade(engine)
    engine.dispose()
    return name


@contextmanager
def postgis_clone(admin_url: str, template: str) -> Iterator[str]:
    name = f"xuncha_t_{worker_suffix()}_{uuid.uuid4().hex[:10]}"
    url = create_database(admin_url, name, template=template)
    try:
        yield url
    finally:
        drop_database(admin_url, name)
