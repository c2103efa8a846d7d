"""HTTP endpoints for grid versions: list, inspect, import and activate."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile

from backend.accounts.deps import AdminUser, CurrentUser
from backend.core.deps import RuntimeDep, SessionDep
from backend.core.errors import InvalidInput, PayloadTooLarge
from backend.core.params import IdPath
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.core.schemas import contains_nul
from backend.grids import importer, service
from backend.grids.codes import GridCodeScheme
from backend.grids.schemas import GridVersionDetail, GridVersionList, GridVersionOut

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1", tags=["grids"], responses=PROBLEM_RESPONSES
)


@router.get("/grid-versions", operation_id="listGridVersions")
def list_versions(session: SessionDep, _user: CurrentUser) -> GridVersionList:
    """Every imported grid version, newest first; exactly one is active."""
    return GridVersionList(
        items=[GridVersionOut.model_validate(v) for v in service.list_versions(session)]
    )


@router.get("/grid-versions/{version_id}", operation_id="getGridVersion")
def get_version(version_id: IdPath, session: SessionDep, _user: CurrentUser) -> GridVersionDetail:
    """One grid version with its import report."""
    return GridVersionDetail.model_validate(service.get_version(session, version_id))


@router.post("/grid-versions/{version_id}/activate", operation_id="activateGridVersion")
def activate(version_id: IdPath, session: SessionDep, admin: AdminUser) -> GridVersionOut:
    """Make this version the active one, atomically; later matches use it."""
    version = service.activate_version(session, version_id, admin.username)
    return GridVersionOut.model_validate(version)


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
    if contains_nul([crs, layer, label, field_map, file.filename]):
        raise InvalidInput("NUL characters are not allowed in form fields")
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
