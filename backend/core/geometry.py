"""The one place where geometry crosses the database boundary.

Models declare :class:`GeometryColumn`; Python code only ever sees Shapely geometries in
WGS-84/CGCS2000 lon/lat (SRID 4326):

* PostgreSQL: a PostGIS ``geometry(<type>, 4326)`` column through GeoAlchemy2, so SQL
  predicates (``ST_Covers``) and GiST indexes work.
* SQLite: plain WKB in a BLOB. We deliberately do not use SpatiaLite (many Python builds cannot
  load SQLite extensions); spatial filtering uses indexed bounding-box columns stored next to
  the geometry, and exact predicates run in Shapely.
"""

from __future__ import annotations

from typing import Any

import shapely
from geoalchemy2 import Geometry, WKBElement
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

SRID = 4326


class GeometryColumn(TypeDecorator[shapely.Geometry]):
    """Shapely in, Shapely out; PostGIS geometry on PostgreSQL, WKB on SQLite."""

    impl = LargeBinary
    cache_ok = True
    # Read by GeoAlchemy2's DDL event hooks; our indexes are explicit, so it must not add one.
    spatial_index = False

    def __init__(self, geometry_type: str = "GEOMETRY", srid: int = SRID) -> None:
        super().__init__()
        self.geometry_type = geometry_type
        self.srid = srid

    def load_dialect_impl(self, dialect: Dialect | None) -> TypeEngine[Any]:
        # GeoAlchemy2's DDL hooks probe this with dialect=None; answering "not spatial" keeps
        # them out of the way, because our migrations create columns and indexes explicitly.
        if dialect is not None and dialect.name == "postgresql":
            # The GiST index is declared explicitly in the model and migration instead.
            return dialect.type_descriptor(
                Geometry(self.geometry_type, srid=self.srid, spatial_index=False)
            )
        return LargeBinary() if dialect is None else dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: shapely.Geometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return from_shape(value, srid=self.srid)
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> shapely.Geometry | None:
        if value is None:
            return None
        if isinstance(value, WKBElement):
            return to_shape(value)
        return shapely.from_wkb(bytes(value))


def bounds_columns_values(geom: shapely.Geometry) -> dict[str, float]:
    """Values for the ``min_x/min_y/max_x/max_y`` columns that stand in for a spatial index."""
    min_x, min_y, max_x, max_y = geom.bounds
    return {"min_x": min_x, "min_y": min_y, "max_x": max_x, "max_y": max_y}
