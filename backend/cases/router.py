"""Cases for the command centre and departments: open (other sources), read, act, overdue.

Phones never call these: inspectors' reports open cases through sync, and tasks travel
through sync too (backend.cases.tasks). Listing, export and tiles live in review_router.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from backend.accounts.deps import CurrentUser, require_roles
from backend.accounts.models import Role, User
from backend.cases import repository, service, views
from backend.cases.errors import CaseInputInvalid
from backend.cases.lifecycle import ACTIONS
from backend.cases.models import CaseSource
from backend.cases.review import visible_to
from backend.cases.schemas import (
    ActionIn,
    CaseCreate,
    CaseDetail,
    CaseList,
    CaseSummary,
    VerifierIn,
)
from backend.core.deps import RuntimeDep, SessionDep
from backend.core.params import IdPath
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.geo.crs import LocationCRS, normalise_location
from backend.grids.service import locate

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1/cases", tags=["cases"], responses=PROBLEM_RESPONSES
)
Intake = Annotated[User, Depends(require_roles(Role.intake_operator, Role.shift_lead, Role.admin))]
ACTION_PATTERN = "^(" + "|".join(sorted(n for n, a in ACTIONS.items() if not a.by_phone)) + ")$"


@router.post("", operation_id="createCase", status_code=201)
def create_case(
    body: CaseCreate, request: Request, session: SessionDep, runtime: RuntimeDep, user: Intake
) -> CaseDetail:
    """Open a case from the hotline (12345/12319), a complaint, video patrol or a leader."""
    if body.source is CaseSource.inspector:
        raise CaseInputInvalid("inspectors' cases come from their reports through sync")
    crs = LocationCRS(body.location.crs) if body.location.crs in _CRS else None
    if crs is None:
        raise CaseInputInvalid(f"unknown crs {body.location.crs[:20]!r}; use {sorted(_CRS)}")
    index = runtime.grid_indexes.active(session)
    flags: list[str] = []
    if index is None:
        lon, lat = normalise_location(body.location.lon, body.location.lat, crs)
        grid_code = None
    else:
        found = locate(index, body.location.lon, body.location.lat, crs, None, 0.0)
        lon, lat, grid_code = found.lon, found.lat, found.match.grid_code
        flags = [f for f in found.flags if f != "accuracy_missing"]
    new = service.NewCase(
        body.source, body.source_ref, body.category_code, body.description.strip(),
        body.address.strip(), lon, lat, grid_code, flags,
    )  # fmt: skip
    case = service.open_from_source(session, user, new)
    return views.detail(session, runtime, user, case, str(request.base_url))


@router.get("/overdue", operation_id="listOverdueCases")
def overdue(
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> CaseList:
    """Cases whose current step is past its working-time deadline, most overdue first."""
    now = datetime.now(UTC)
    rows = repository.overdue(session, now, limit=limit, visible=visible_to(user))
    return CaseList(items=[views.summary(c, now) for c in rows])


@router.get("/{case_id}", operation_id="getCase")
def get_case(
    case_id: IdPath, request: Request, session: SessionDep, runtime: RuntimeDep, user: CurrentUser
) -> CaseDetail:
    """A case with its timeline, timed steps, tasks, reports and photos, grid and neighbours."""
    case = service.visible(session, user, case_id)
    return views.detail(session, runtime, user, case, str(request.base_url))


@router.post("/{case_id}/actions/{action}", operation_id="actOnCase")
def act(
    case_id: IdPath,
    action: Annotated[str, Path(pattern=ACTION_PATTERN, description="See docs/cases.md")],
    body: ActionIn,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
) -> CaseDetail:
    """Move a case along the workflow; 409 `illegal_transition` when it does not apply."""
    given = service.ActionInput(
        comment=body.comment,
        expected_version=body.expected_version,
        department_code=body.department_code,
        into_case_id=body.into_case_id,
    )
    case = service.act(session, user, case_id, action, given)
    return views.detail(session, runtime, user, case, str(request.base_url))


@router.post("/{case_id}/verifier", operation_id="assignVerifier")
def assign_verifier(
    case_id: IdPath,
    body: VerifierIn,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
) -> CaseDetail:
    """Give the verification (核查) task to another inspector; the first device drops it."""
    case = service.assign_verifier(session, user, case_id, body.username, body.comment.strip())
    return views.detail(session, runtime, user, case, str(request.base_url))


_CRS = {c.value for c in LocationCRS}
_ = CaseSummary  # re-exported for the review router's schemas
