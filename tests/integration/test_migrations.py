"""Schemas come only from Alembic: up → down → up works, and models match the migrations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from backend.core import migrate
from backend.core.db import create_db_engine
from backend.core.models_registry import metadata
from backend.core.settings import load_settings
from backend.migration_support import compare_type, include_object_for
from tests.support import databases


@pytest.fixture(params=["sqlite", "postgis"])
def empty_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        engine = create_db_engine(load_settings(database_url=url))
        yield engine
        engine.dispose()
        return
    admin = request.getfixturevalue("postgis_service").admin_url
    name = f"xuncha_mig_{databases.worker_suffix()}"
    url = databases.create_database(admin, name)
    engine = create_db_engine(load_settings(database_url=url))
    yield engine
    engine.dispose()
    databases.drop_database(admin, name)


def _diff(engine: Engine, target: sa.MetaData) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_object": include_object_for(engine.dialect.name),
                "compare_type": compare_type,
                "target_metadata": target,
            },
        )
        return list(compare_metadata(context, target))


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"spatial_ref_sys"}


def test_upgrade_downgrade_upgrade_and_no_drift(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision(empty_engine)
    assert {"users", "grid_versions", "grid_cells", "grid_assignments"} <= _tables(empty_engine)
    migrate.downgrade(empty_engine, "base")
    assert _tables(empty_engine) <= {"alembic_version"}
    migrate.upgrade(empty_engine)
    assert _diff(empty_engine, metadata) == []


def test_drift_detection_is_real(empty_engine: Engine) -> None:
    """The no-drift assertion above can fail: a column missing from the migrations shows up."""
    migrate.upgrade(empty_engine)
    extended = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(extended)
    extended.tables["grid_cells"].append_column(sa.Column("unmigrated", sa.Integer()))
    diff = _diff(empty_engine, extended)
    assert any("unmigrated" in repr(entry) for entry in diff), diff


def test_postgis_geometry_column_and_gist_index(postgis_url: str) -> None:
    engine = create_db_engine(load_settings(database_url=postgis_url))
    with engine.connect() as conn:
        column = conn.execute(
            sa.text(
                "SELECT type, srid FROM geometry_columns "
                "WHERE f_table_name = 'grid_cells' AND f_geometry_column = 'geom'"
            )
        ).one()
        index = conn.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_grid_cells_geom'")
        ).scalar_one()
    engine.dispose()
    assert tuple(column) == ("MULTIPOLYGON", 4326)
    assert "USING gist" in index
