"""The violation taxonomy: read by everyone signed in, replaced from a file by admins."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import Response

from backend.accounts.deps import AdminUser, CurrentUser
from backend.categories import service
from backend.categories.schemas import CategoryImportOut, CategoryNode, CategoryOut, CategoryTree
from backend.categories.taxonomy import MAX_FILE_BYTES
from backend.core.deps import SessionDep
from backend.core.errors import PayloadTooLarge
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute

router = APIRouter(
    route_class=OneThreadRoute,
    prefix="/api/v1/categories",
    tags=["categories"],
    responses=PROBLEM_RESPONSES,
)
CodePath = Annotated[str, Path(pattern=r"^[0-9]{2,6}$")]
MEDIA = {"yaml": "application/yaml", "json": "application/json"}


@router.get("", operation_id="listCategories")
def list_categories(session: SessionDep, _user: CurrentUser) -> CategoryTree:
    """The active categories as a tree (majors with their categories), in file order."""
    rows = service.tree(session)
    nodes = {row.code: CategoryNode(**CategoryOut.of(row).model_dump()) for row in rows}
    roots: list[CategoryNode] = []
    for row in sorted(rows, key=lambda r: (r.position, r.code)):
        parent = nodes.get(row.parent_code) if row.parent_code else None
        (parent.children if parent is not None else roots).append(nodes[row.code])
    return CategoryTree(items=roots)


@router.get(
    "/export",
    operation_id="exportCategories",
    response_class=Response,
    responses={200: {"content": {m: {} for m in MEDIA.values()}, "description": "The file"}},
)
def export_categories(
    session: SessionDep,
    _user: CurrentUser,
    fmt: Annotated[Literal["yaml", "json"], Query(alias="format")] = "yaml",
) -> Response:
    """The active categories as an importable file."""
    return Response(
        service.export(session, fmt),
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="categories.{fmt}"'},
    )


@router.get("/{code}", operation_id="getCategory")
def get_category(code: CodePath, session: SessionDep, _user: CurrentUser) -> CategoryOut:
    """One category, active or not (old reports may name a retired one)."""
    return CategoryOut.of(service.get(session, code))


@router.post("/import", operation_id="importCategories")
def import_categories(
    session: SessionDep,
    admin: AdminUser,
    file: Annotated[UploadFile, File(description="YAML or JSON file (docs/categories.md)")],
    dry_run: Annotated[bool, Query(description="Report what would change; change nothing")] = False,
) -> CategoryImportOut:
    """Replace the taxonomy with a file's: refused whole on any problem (422, all listed)."""
    data = file.file.read(MAX_FILE_BYTES + 1)  # already spooled by the form parser
    if len(data) > MAX_FILE_BYTES:
        raise PayloadTooLarge(f"category files are limited to {MAX_FILE_BYTES} bytes")
    result = service.import_categories(session, data, dry_run=dry_run, actor=admin.username)
    return CategoryImportOut(
        created=result.created,
        updated=result.updated,
        deactivated=result.deactivated,
        unchanged=result.unchanged,
        dry_run=result.dry_run,
    )
