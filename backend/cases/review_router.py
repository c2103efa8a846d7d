"""The coordinators' review API over cases: list, GeoJSON export, vector tiles.

Every endpoint is open to any signed-in user and shows only what ``review.visible_to``
allows; grid tiles show the city's grid to everyone signed in, as ``GET /api/v1/grids`` does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from backend.accounts.deps import CurrentUser
from backend.accounts.models import User
from backend.cases import review, review_cursor, tiles
from backend.cases.review import MAX_EXPORT, MAX_PAGE, CaseFilter
from backend.cases.review_errors import ExportTooLarge
from backend.cases.review_export import geojson_chunks
from backend.cases.review_params import CaseFilterDep, SortName
from backend.cases.review_schemas import CaseListItem, CaseListPage
from backend.core.deps import RuntimeDep, SessionDep, SettingsDep
from backend.core.geojson import GEOJSON_MEDIA_TYPE
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.core.types import utcnow
from backend.grids import repository as grids
from backend.grids import service as grid_service
from backend.grids.api_common import VersionQuery

router = APIRouter(route_class=OneThreadRoute, prefix="/api/v1", responses=PROBLEM_RESPONSES)

MVT_MEDIA_TYPE: Final = "application/vnd.mapbox-vector-tile"


def _where(
    session: Session, user: User, flt: CaseFilter, now: datetime
) -> list[ColumnElement[bool]]:
    return review.conditions(user, flt, dialect=session.get_bind().dialect.name, now=now)


@router.get("/cases", operation_id="listCases", tags=["cases"])
def list_cases(
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    flt: CaseFilterDep,
    sort: SortName = "-created_at",
    cursor: Annotated[str | None, Query(max_length=600)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> CaseListPage:
    """Cases you may see, filtered, in pages (keyset: no repeats, no gaps)."""
    key = review_cursor.signing_key(settings.secret_key.get_secret_value())
    digest = flt.digest()
    after = review_cursor.decode(key, cursor, sort, digest) if cursor else None
    now = utcnow()
    found = review.page(session, _where(session, user, flt, now), review.SORTS[sort], after, limit)
    next_cursor = None
    if found.next_key is not None:
        next_cursor = review_cursor.encode(key, sort, digest, found.next_key)
    items = [CaseListItem.model_validate(review.summary(row, now)) for row in found.rows]
    return CaseListPage(items=items, next_cursor=next_cursor)


@router.get(
    "/cases/export.geojson",
    operation_id="exportCases",
    tags=["cases"],
    response_class=StreamingResponse,
    responses={200: {"content": {GEOJSON_MEDIA_TYPE: {}}, "description": "FeatureCollection"}},
)
def export_cases(
    runtime: RuntimeDep, session: SessionDep, user: CurrentUser, flt: CaseFilterDep
) -> StreamingResponse:
    """The filtered cases as GeoJSON Points (WGS-84), by id; at most 100,000 (else 422)."""
    now = utcnow()
    where = _where(session, user, flt, now)
    total = review.count(session, where)
    if total > MAX_EXPORT:
        raise ExportTooLarge(
            f"{total} cases match; one export holds at most {MAX_EXPORT}: narrow the filters",
            count=total,
            limit=MAX_EXPORT,
        )
    rows = review.iter_export(runtime.read_sessions, where, MAX_EXPORT)
    return StreamingResponse(
        geojson_chunks(rows, now),
        media_type=GEOJSON_MEDIA_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="cases.geojson"',
            "X-Total-Count": str(total),
        },
    )


TILE_RESPONSES: Final[dict[int | str, dict[str, object]]] = {
    200: {"content": {MVT_MEDIA_TYPE: {}}, "description": "Mapbox Vector Tile (v2)"},
    204: {"description": "Nothing in this tile"},
}


def _tile_response(body: bytes, cache_seconds: int, truncated: bool = False) -> Response:
    headers = {"Cache-Control": f"private, max-age={cache_seconds}"}
    if truncated:
        headers["X-Tile-Truncated"] = "true"
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, media_type=MVT_MEDIA_TYPE, headers=headers)


@router.get(
    "/tiles/cases/{z}/{x}/{y}.mvt",
    operation_id="caseTile",
    tags=["tiles"],
    response_class=Response,
    responses=TILE_RESPONSES,
)
def case_tile(
    z: int, x: int, y: int, session: SessionDep, user: CurrentUser, flt: CaseFilterDep
) -> Response:
    """Layer `cases`: points with id, status, category_code, overdue; the list's filters."""
    tile = tiles.Tile.checked(z, x, y)
    now = utcnow()
    body, truncated = tiles.case_tile(session, tile, _where(session, user, flt, now), now)
    return _tile_response(body, 30, truncated)


@router.get(
    "/tiles/grids/{z}/{x}/{y}.mvt",
    operation_id="gridTile",
    tags=["tiles"],
    response_class=Response,
    responses=TILE_RESPONSES,
)
def grid_tile(
    z: int, x: int, y: int, session: SessionDep, _user: CurrentUser, version: VersionQuery = None
) -> Response:
    """Layer `grids`: polygons with code, name, zone_tier, street_code, community_code."""
    tile = tiles.Tile.checked(z, x, y)
    if version is not None:
        version_id: int | None = grid_service.get_version(session, version).id
    else:
        version_id = grids.active_version_id(session)
    if version_id is None:  # nothing active yet: an empty map, not an error per tile
        return _tile_response(b"", 300)
    return _tile_response(tiles.grid_tile(session, tile, version_id), 300)
