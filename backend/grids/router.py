"""HTTP endpoints for grids: list (JSON or GeoJSON), get, and point lookup."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from backend.accounts.deps import CurrentUser
from backend.core.deps import RuntimeDep, SessionDep
from backend.core.geojson import GEOJSON_MEDIA_TYPE, feature_collection
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.geo.crs import LocationCRS
from backend.grids import service
from backend.grids.api_common import (
    GridCodePath,
    VersionQuery,
    decode_cursor,
    encode_cursor,
    grid_feature,
    grid_out,
    parse_bbox,
)
from backend.grids.models import ZoneTier
from backend.grids.repository import CellFilter
from backend.grids.schemas import GridMatchOut, GridOut, GridPage

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1", tags=["grids"], responses=PROBLEM_RESPONSES
)

MAX_PAGE = 1000


@router.get(
    "/grids",
    operation_id="listGrids",
    responses={200: {"content": {GEOJSON_MEDIA_TYPE: {}}}},
)
def list_grids(
    request: Request,
    session: SessionDep,
    _user: CurrentUser,
    parent: Annotated[
        str | None, Query(max_length=40, description="District, street or community code")
    ] = None,
    bbox: Annotated[
        str | None, Query(description="min_lon,min_lat,max_lon,max_lat (WGS-84)")
    ] = None,
    zone_tier: ZoneTier | None = None,
    version: VersionQuery = None,
    format: Annotated[Literal["json", "geojson"] | None, Query()] = None,
    geometry: Annotated[bool, Query(description="Include polygons in JSON output")] = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> GridPage:
    """Grids of a version, by code; as JSON pages or a GeoJSON FeatureCollection."""
    flt = CellFilter(
        version_id=service.resolve_version_id(session, version),
        parent_code=parent,
        bbox=parse_bbox(bbox),
        zone_tier=zone_tier.value if zone_tier else None,
        after_code=decode_cursor(cursor),
        limit=limit,
    )
    cells, next_code = service.list_cells(session, flt)
    wants_geojson = format == "geojson" or (
        format is None and GEOJSON_MEDIA_TYPE in request.headers.get("accept", "")
    )
    if wants_geojson:
        body = feature_collection(
            [grid_feature(c) for c in cells], next_cursor=encode_cursor(next_code)
        )
        return JSONResponse(body, media_type=GEOJSON_MEDIA_TYPE)  # type: ignore[return-value]
    return GridPage(
        items=[grid_out(c, geometry) for c in cells], next_cursor=encode_cursor(next_code)
    )


@router.get("/grids/lookup", operation_id="lookupGrid")
def lookup(
    runtime: RuntimeDep,
    session: SessionDep,
    _user: CurrentUser,
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    crs: Annotated[LocationCRS, Query(description="wgs84 | gcj02 | bd09 | cgcs2000")],
    accuracy_m: Annotated[float | None, Query(ge=0, le=100_000, allow_inf_nan=False)] = None,
) -> GridMatchOut:
    """Which grid a device location falls in (normalised to WGS-84 first)."""
    found = service.match_location(
        session,
        runtime.grid_indexes,
        lon,
        lat,
        crs,
        accuracy_m,
        poor_accuracy_m=runtime.settings.location_poor_accuracy_m,
    )
    runtime.metrics.grid_matches.labels(found.match.kind.value).inc()
    grid = None
    if found.match.grid_code is not None:
        grid = grid_out(
            service.get_cell(session, found.match.grid_code, found.match.grid_version_id), False
        )
    return GridMatchOut(
        grid_version_id=found.match.grid_version_id,
        kind=found.match.kind,
        grid_code=found.match.grid_code,
        candidates=list(found.match.candidates),
        distance_m=None if found.match.distance_m is None else round(found.match.distance_m, 2),
        lon=found.lon,
        lat=found.lat,
        source_crs=found.source_crs,
        accuracy_m=found.accuracy_m,
        flags=list(found.flags),
        grid=grid,
    )


@router.get("/grids/{code}", operation_id="getGrid")
def get_grid(
    code: GridCodePath,
    session: SessionDep,
    _user: CurrentUser,
    version: VersionQuery = None,
) -> GridOut:
    """One grid with its polygon."""
    return grid_out(service.get_cell(session, code, version), with_geometry=True)
