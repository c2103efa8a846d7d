"""Alembic environment: one migration history for both dialects (SQLite and PostGIS)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from backend.core.db import create_db_engine
from backend.core.models_registry import metadata
from backend.core.settings import load_settings
from backend.migration_support import compare_type, include_object_for

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object_for(connection.dialect.name),
        compare_type=compare_type,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection: Any = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    settings = load_settings(**({"database_url": url} if url else {}))
    engine = create_db_engine(settings)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
