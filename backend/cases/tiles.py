"""Mapbox Vector Tiles of cases and of the active grid version, on both profiles.

PostGIS: ST_AsMVTGeom/ST_AsMVT in the database, prefiltered through the GiST index. SQLite
(no SpatiaLite, ADR-wise): a bounding-box prefilter on indexed columns (cases.lon/lat,
grid_cells.min_x…), then Web-Mercator pixels in numpy and encoding by ``mapbox-vector-tile``.
Both clip to the same buffered tile, so a client cannot tell the profiles apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import mapbox_vector_tile
import numpy as np
import shapely
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from backend.cases.models import Case
from backend.cases.review import overdue_clause
from backend.cases.review_errors import TileOutOfRange
from backend.grids.models import GridCell

MAX_ZOOM: Final = 24
EXTENT: Final = 4096
BUFFER: Final = 64  # pixels around the tile, so symbols on the edge are drawn whole
# A tile holds at most this many cases (newest first); more sets ``truncated``. Beyond
# ~50k points a tile is over a megabyte and the map should zoom in anyway.
MAX_TILE_FEATURES: Final = 50_000
MAX_LAT: Final = 85.0511287798066  # Web Mercator's edge
CASE_LAYER, GRID_LAYER = "cases", "grids"


@dataclass(frozen=True)
class Tile:
    z: int
    x: int
    y: int

    @classmethod
    def checked(cls, z: int, x: int, y: int) -> Tile:
        side = 1 << z if 0 <= z <= MAX_ZOOM else 0
        if not (0 <= x < side and 0 <= y < side):
            raise TileOutOfRange(
                f"tile {z}/{x}/{y} does not exist: z must be 0-{MAX_ZOOM} and x, y 0-(2^z - 1)"
            )
        return cls(z, x, y)

    def lonlat_bounds(self, margin: float = BUFFER / EXTENT) -> tuple[float, float, float, float]:
        """min_lon, min_lat, max_lon, max_lat of the tile grown by ``margin`` tiles."""
        n = 1 << self.z

        def lon(tx: float) -> float:
            return tx / n * 360.0 - 180.0

        def lat(ty: float) -> float:
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * ty / n))))

        m = margin
        return lon(self.x - m), lat(self.y + 1 + m), lon(self.x + 1 + m), lat(self.y - m)

    def pixels(self, lonlat: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """(N, 2) lon/lat → (N, 2) tile pixels, y down, 0..EXTENT inside the tile."""
        n = 1 << self.z
        lon, lat = lonlat[:, 0], np.clip(lonlat[:, 1], -MAX_LAT, MAX_LAT)
        mx = (lon + 180.0) / 360.0 * n
        phi = np.radians(lat)
        my = (1.0 - np.log(np.tan(phi) + 1.0 / np.cos(phi)) / math.pi) / 2.0 * n
        return np.column_stack(((mx - self.x) * EXTENT, (my - self.y) * EXTENT))


def _is_postgis(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _search_box(tile: Tile) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = tile.lonlat_bounds()
    return max(x0, -180.0), max(y0, -90.0), min(x1, 180.0), min(y1, 90.0)


# -- cases ----------------------------------------------------------------------------------


def case_tile(
    session: Session, tile: Tile, where: Sequence[ColumnElement[bool]], now: datetime
) -> tuple[bytes, bool]:
    """The case layer (properties id, status, category_code, overdue) and whether it was cut."""
    if _is_postgis(session):
        return _case_tile_postgis(session, tile, where, now)
    return _case_tile_python(session, tile, where, now)


def _case_tile_postgis(
    session: Session, tile: Tile, where: Sequence[ColumnElement[bool]], now: datetime
) -> tuple[bytes, bool]:
    x0, y0, x1, y1 = _search_box(tile)
    envelope = func.ST_TileEnvelope(tile.z, tile.x, tile.y)
    picked = (
        select(
            func.ST_AsMVTGeom(
                func.ST_Transform(Case.geom, 3857), envelope, EXTENT, BUFFER, True
            ).label("geom"),
            Case.id.label("fid"),
            Case.id.label("id"),
            Case.status,
            Case.category_code,
            overdue_clause(now).label("overdue"),
        )
        .where(Case.geom.bool_op("&&")(func.ST_MakeEnvelope(x0, y0, x1, y1, 4326)), *where)
        .order_by(Case.id.desc())
        .limit(MAX_TILE_FEATURES + 1)
        .cte("picked")
    )
    kept = select(picked).order_by(picked.c.fid.desc()).limit(MAX_TILE_FEATURES).subquery("t")
    found = select(func.count()).select_from(picked).scalar_subquery()
    mvt = func.ST_AsMVT(kept.table_valued(), CASE_LAYER, EXTENT, "geom", "fid")
    body, total = session.execute(select(mvt, found)).one()
    return bytes(body or b""), int(total) > MAX_TILE_FEATURES


def _case_tile_python(
    session: Session, tile: Tile, where: Sequence[ColumnElement[bool]], now: datetime
) -> tuple[bytes, bool]:
    x0, y0, x1, y1 = _search_box(tile)
    rows = session.execute(
        select(Case.id, Case.status, Case.category_code, Case.lon, Case.lat, overdue_clause(now))
        .where(Case.lon.between(x0, x1), Case.lat.between(y0, y1), *where)
        .order_by(Case.id.desc())
        .limit(MAX_TILE_FEATURES + 1)
    ).all()
    truncated = len(rows) > MAX_TILE_FEATURES
    rows = rows[:MAX_TILE_FEATURES]
    if not rows:
        return b"", False
    px = np.rint(tile.pixels(np.array([(r.lon, r.lat) for r in rows], dtype=float)))
    inside = np.all((px >= -BUFFER) & (px <= EXTENT + BUFFER), axis=1)
    features = [
        {
            "geometry": shapely.Point(int(p[0]), int(p[1])),
            "id": row.id,
            "properties": {
                "id": row.id,
                "status": row.status,
                "category_code": row.category_code,
                "overdue": bool(row[5]),
            },
        }
        for row, p, ok in zip(rows, px, inside, strict=True)
        if ok
    ]
    return _encode(CASE_LAYER, features), truncated


# -- grids ----------------------------------------------------------------------------------


def grid_tile(session: Session, tile: Tile, version_id: int) -> bytes:
    """The grid layer of one version (properties code, name, zone_tier, street/community)."""
    if _is_postgis(session):
        return _grid_tile_postgis(session, tile, version_id)
    return _grid_tile_python(session, tile, version_id)


GRID_PROPERTIES = ("code", "name", "zone_tier", "street_code", "community_code")


def _grid_tile_postgis(session: Session, tile: Tile, version_id: int) -> bytes:
    x0, y0, x1, y1 = _search_box(tile)
    envelope = func.ST_TileEnvelope(tile.z, tile.x, tile.y)
    rows = (
        select(
            func.ST_AsMVTGeom(
                func.ST_Transform(GridCell.geom, 3857), envelope, EXTENT, BUFFER, True
            ).label("geom"),
            *(getattr(GridCell, name) for name in GRID_PROPERTIES),
        )
        .where(
            GridCell.version_id == version_id,
            GridCell.geom.bool_op("&&")(func.ST_MakeEnvelope(x0, y0, x1, y1, 4326)),
        )
        .subquery("t")
    )
    body = session.scalar(select(func.ST_AsMVT(rows.table_valued(), GRID_LAYER, EXTENT, "geom")))
    return bytes(body or b"")


def _grid_tile_python(session: Session, tile: Tile, version_id: int) -> bytes:
    x0, y0, x1, y1 = _search_box(tile)
    cells = session.execute(
        select(GridCell.geom, *(getattr(GridCell, name) for name in GRID_PROPERTIES)).where(
            and_(
                GridCell.version_id == version_id,
                GridCell.min_x <= x1,
                GridCell.max_x >= x0,
                GridCell.min_y <= y1,
                GridCell.max_y >= y0,
            )
        )
    ).all()
    features = []
    for cell in cells:
        shape = _polygon_pixels(tile, cell.geom)
        if shape is None:
            continue
        props = {name: getattr(cell, name) for name in GRID_PROPERTIES}
        features.append(
            {"geometry": shape, "properties": {k: v for k, v in props.items() if v is not None}}
        )
    return _encode(GRID_LAYER, features) if features else b""


def _polygon_pixels(tile: Tile, geom: shapely.Geometry) -> shapely.Geometry | None:
    """Project, clip to the buffered tile and snap to whole pixels (as ST_AsMVTGeom does)."""
    projected = shapely.transform(geom, tile.pixels)
    clipped = shapely.clip_by_rect(projected, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    # Snapping to the integer grid keeps the result valid and drops parts under a pixel.
    snapped = shapely.set_precision(clipped, 1.0)
    if snapped.is_empty:
        return None
    if snapped.geom_type in ("Polygon", "MultiPolygon"):
        return snapped
    # A clip can leave a collection with slivers that collapsed to lines or points.
    polygons: list[shapely.Polygon] = []
    for part in shapely.get_parts(snapped):
        if part.geom_type == "Polygon":
            polygons.append(part)
        elif part.geom_type == "MultiPolygon":
            polygons.extend(part.geoms)
    return shapely.MultiPolygon(polygons) if polygons else None


def _encode(layer: str, features: list[dict[str, Any]]) -> bytes:
    if not features:
        return b""
    body: bytes = mapbox_vector_tile.encode(
        {"name": layer, "features": features},
        default_options={"extents": EXTENT, "y_coord_down": True},
    )
    return body
