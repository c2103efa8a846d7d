"""Helpers shared by Alembic's env.py and the migrations themselves.

Kept inside the package (not in migrations/) so tests and the CLI import the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.operations import Operations
from sqlalchemy import Index, LargeBinary

from backend.core.geometry import GeometryColumn

# Tables PostGIS itself creates; not ours to compare or drop.
_FOREIGN_TABLES = {"spatial_ref_sys", "topology", "layer"}


def include_object_for(dialect_name: str) -> Callable[..., bool]:
    """Alembic's object filter for one dialect (its hook is not told which dialect it runs on)."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table" and name in _FOREIGN_TABLES:
            return False
        if type_ == "index" and isinstance(obj, Index) and not reflected:
            # Indexes declared with ddl_if(dialect=...) exist only on that dialect.
            ddl_if = getattr(obj, "_ddl_if", None)
            if ddl_if is not None and ddl_if.dialect is not None:
                return bool(ddl_if.dialect == dialect_name)
        return True

    return include_object


def compare_type(
    ctx: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Our geometry type reflects as PostGIS ``geometry`` or SQLite ``BLOB``; both are a match."""
    if isinstance(metadata_type, GeometryColumn):
        dialect = ctx.dialect.name
        if dialect == "postgresql":
            same = (
                type(inspected_type).__name__ == "Geometry"
                and inspected_type.geometry_type == metadata_type.geometry_type
                and inspected_type.srid == metadata_type.srid
            )
            return not same
        return not isinstance(inspected_type, LargeBinary)
    return None


def geometry_column(name: str, geometry_type: str, nullable: bool = False) -> Any:
    import sqlalchemy as sa

    return sa.Column(name, GeometryColumn(geometry_type), nullable=nullable)


def create_gist_index(op: Operations, name: str, table: str, column: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(name, table, [column], postgresql_using="gist")


def drop_gist_index(op: Operations, name: str, table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(name, table_name=table)


def ensure_postgis(op: Operations) -> None:
    """PostGIS must exist before geometry columns; creating it needs rights a DBA may hold."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
