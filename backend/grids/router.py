"""HTTP endpoints of the grids domain: thin — parse, authorise, call one service, shape output."""

from __future__ import annotations

import base64
import binascii
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from backend.accounts.deps import AdminUser, CurrentUser
from backend.core.deps import RuntimeDep, SessionDep
from backend.core.errors import InvalidInput, PayloadTooLarge
from backend.core.geojson import GEOJSON_MEDIA_TYPE, feature, feature_collection, geometry_dict
from backend.core.problems import PROBLEM_RESPONSES
from backend.geo.crs import LocationCRS
from backend.grids import importer, service
from backend.grids.codes import GridCodeScheme
from backend.grids.models import GridCell, ZoneTier
from backend.grids.repository import CellFilter
from backend.grids.schemas import (
    AssignmentEnd,
    AssignmentIn,
    AssignmentList,
    AssignmentOut,
    GridMatchOut,
    GridOut,
    GridPage,
    GridVersionDetail,
    GridVersionList,
    GridVersionOut,
)

router = APIRouter(prefix="/api/v1", tags=["grids"], responses=PROBLEM_RESPONSES)

MAX_PAGE = 1000


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"


class InvalidBBox(InvalidInput):
    code = "invalid_bbox"


def _encode_cursor(code: str | None) -> str | None:
    return None if code is None else base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str | None:
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


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (float(part) for part in text.split(","))
    except ValueError:
        raise InvalidBBox("bbox must be min_lon,min_lat,max_lon,max_lat") from None
    finite = all(v == v and abs(v) != float("inf") for v in (x0, y0, x1, y1))
    if not finite or not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InvalidBBox("bbox must be min_lon,min_lat,max_lon,max_lat within WGS-84 ranges")
    return x0, y0, x1, y1


def _grid_out(cell: GridCell, with_geometry: bool) -> GridOut:
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


def _grid_feature(cell: GridCell) -> dict[str, Any]:
    props = _grid_out(cell, with_geometry=False).model_dump(mode="json", exclude={"geometry"})
    return feature(cell.geom, props, fid=cell.code)


# -- versions -------------------------------------------------------------------------------


@router.get("/grid-versions", operation_id="listGridVersions")
def list_versions(session: SessionDep, _user: CurrentUser) -> GridVersionList:
    """Every imported grid version, newest first; exactly one is active."""
    return GridVersionList(
        items=[GridVersionOut.model_validate(v) for v in service.list_versions(session)]
    )


@router.get("/grid-versions/{version_id}", operation_id="getGridVersion")
def get_version(version_id: int, session: SessionDep, _user: CurrentUser) -> GridVersionDetail:
    """One grid version with its import report."""
    return GridVersionDetail.model_validate(service.get_version(session, version_id))


@router.post("/grid-versions/{version_id}/activate", operation_id="activateGridVersion")
def activate(version_id: int, session: SessionDep, _admin: AdminUser) -> GridVersionOut:
    """Make this version the active one, atomically; later matches use it."""
    return GridVersionOut.model_validate(service.activate_version(session, version_id))


@router.post(
    "/grid-versions",
    operation_id="importGridVersion",
    status_code=201,
    responses={413: PROBLEM_RESPONSES[422] | {"description": "File too large"}},
)
def import_version(
    runtime: RuntimeDep,
    session: SessionDep,
    admin: AdminUser,
    file: Annotated[UploadFile, File(description="GeoJSON, zipped Shapefile, GeoPackage or KML")],
    crs: Annotated[str | None, Form(description="Source system: EPSG:<n>, gcj02, bd09")] = None,
    layer: Annotated[str | None, Form()] = None,
    invalid: Annotated[Literal["repair", "refuse"], Form()] = "repair",
    activate: Annotated[bool, Form()] = False,
    label: Annotated[str | None, Form(max_length=200)] = None,
    field_map: Annotated[
        list[str] | None, Form(description="Column mappings such as code=WGBM")
    ] = None,
) -> GridVersionDetail:
    """Import a grid file as a new version; a refused file changes nothing."""
    settings = runtime.settings
    mapping = _parse_field_map(field_map or [])
    options = importer.ImportOptions(
        crs=crs,
        layer=layer,
        field_map=mapping,
        invalid=invalid,
        label=label,
        activate=activate,
        actor=admin.username,
        overlap_tolerance_m2=settings.grid_overlap_tolerance_m2,
        gap_tolerance_m2=settings.grid_gap_tolerance_m2,
    )
    name = Path(file.filename or "").name
    if name in ("", ".", ".."):
        name = "upload"
    with tempfile.TemporaryDirectory(prefix="xuncha-import-") as tmp:
        # Saved under a fixed name: the client's file name is only a label (and may be hostile).
        path = Path(tmp) / "upload.bin"
        _save_upload(file, path, settings.grid_import_max_bytes)
        result = importer.import_grid_file(
            session, path, options, GridCodeScheme(settings.grid_code_pattern), original_name=name
        )
    return GridVersionDetail.model_validate(result.version)


def _parse_field_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise InvalidInput(f"field mapping {pair!r} must look like code=WGBM")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _save_upload(upload: UploadFile, path: Path, limit: int) -> None:
    written = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise PayloadTooLarge(f"grid files are limited to {limit} bytes")
            out.write(chunk)


# -- grids ----------------------------------------------------------------------------------


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
    version: Annotated[int | None, Query(description="Grid version; default: active")] = None,
    format: Annotated[Literal["json", "geojson"] | None, Query()] = None,
    geometry: Annotated[bool, Query(description="Include polygons in JSON output")] = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> GridPage:
    """Grids of a version, by code; as JSON pages or a GeoJSON FeatureCollection."""
    flt = CellFilter(
        version_id=service.resolve_version_id(session, version),
        parent_code=parent,
        bbox=_parse_bbox(bbox),
        zone_tier=zone_tier.value if zone_tier else None,
        after_code=_decode_cursor(cursor),
        limit=limit,
    )
    cells, next_code = service.list_cells(session, flt)
    wants_geojson = format == "geojson" or (
        format is None and GEOJSON_MEDIA_TYPE in request.headers.get("accept", "")
    )
    if wants_geojson:
        body = feature_collection(
            [_grid_feature(c) for c in cells], next_cursor=_encode_cursor(next_code)
        )
        return JSONResponse(body, media_type=GEOJSON_MEDIA_TYPE)  # type: ignore[return-value]
    return GridPage(
        items=[_grid_out(c, geometry) for c in cells], next_cursor=_encode_cursor(next_code)
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
        grid = _grid_out(
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
    code: str,
    session: SessionDep,
    _user: CurrentUser,
    version: int | None = None,
) -> GridOut:
    """One grid with its polygon."""
    return _grid_out(service.get_cell(session, code, version), with_geometry=True)


# -- responsibility -------------------------------------------------------------------------


@router.get("/grids/{code}/assignments", operation_id="listGridAssignments")
def list_assignments(
    code: str,
    session: SessionDep,
    _user: CurrentUser,
    at: Annotated[date | None, Query(description="Only those in effect on this day")] = None,
) -> AssignmentList:
    """Responsibility history of a grid (网格员, 责任单位), oldest first."""
    return AssignmentList(
        items=[AssignmentOut.model_validate(a) for a in service.assignments(session, code, at)]
    )


@router.post("/grids/{code}/assignments", operation_id="assignGrid", status_code=201)
def assign(code: str, body: AssignmentIn, session: SessionDep, admin: AdminUser) -> AssignmentOut:
    """Make a person or unit responsible for a grid from a date."""
    if body.effective_to is not None and body.effective_to <= body.effective_from:
        raise InvalidInput("effective_to must be after effective_from")
    new = service.NewAssignment(**body.model_dump())
    return AssignmentOut.model_validate(service.assign(session, code, new, admin.username))


@router.post("/grids/{code}/assignments/{assignment_id}/end", operation_id="endGridAssignment")
def end_assignment(
    code: str,
    assignment_id: int,
    body: AssignmentEnd,
    session: SessionDep,
    admin: AdminUser,
) -> AssignmentOut:
    """End an assignment on a date; the record stays in the history."""
    return AssignmentOut.model_validate(
        service.end_assignment(session, code, assignment_id, body.effective_to, admin.username)
    )
