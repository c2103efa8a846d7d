"""Parameter types, cursors and response shaping shared by the grids routers."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import Path, Query

from backend.core.errors import InvalidInput
from backend.core.geojson import feature, geometry_dict
from backend.core.params import DB_ID_MAX
from backend.grids.models import GridCell, ZoneTier
from backend.grids.schemas import GridOut

GridCodePath = Annotated[str, Path(min_length=1, max_length=40, description="Grid code")]
VersionQuery = Annotated[
    int | None, Query(ge=1, le=DB_ID_MAX, description="Grid version; default: active")
]


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"


class InvalidBBox(InvalidInput):
    code = "invalid_bbox"


def encode_cursor(code: str | None) -> str | None:
    return None if code is None else base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        code = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        code = ""
    if not code or not code.isprintable():
        raise InvalidCursor("cursor is not one this API issued")
    return code


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (float(part) for part in text.split(","))
    except ValueError:
        raise InvalidBBox("bbox must be min_lon,min_lat,max_lon,max_lat") from None
    finite = all(v == v and abs(v) != float("inf") for v in (x0, y0, x1, y1))
    # A zero-width box is refused: PostGIS and Shapely disagree on degenerate envelopes,
    # and /grids/lookup answers the point question.
    if not finite or not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise InvalidBBox(
            "bbox must be min_lon,min_lat,max_lon,max_lat with min < max, in WGS-84 ranges"
        )
    return x0, y0, x1, y1


def grid_out(cell: GridCell, with_geometry: bool) -> GridOut:
    return GridOut(
        code=cell.code,
        name=cell.name,
        version_id=cell.version_id,
        district_code=cell.district_code,
        street_code=cell.street_code,
        community_code=cell.community_code,
        district_name=cell.district_name,
        street_name=cell.street_name,
        community_name=cell.community_name,
        zone_tier=ZoneTier(cell.zone_tier) if cell.zone_tier else None,
        area_m2=round(cell.area_m2, 2),
        bbox=[cell.min_x, cell.min_y, cell.max_x, cell.max_y],
        geometry=geometry_dict(cell.geom) if with_geometry else None,
    )


def grid_feature(cell: GridCell) -> dict[str, Any]:
    props = grid_out(cell, with_geometry=False).model_dump(mode="json", exclude={"geometry"})
    return feature(cell.geom, props, fid=cell.code)
