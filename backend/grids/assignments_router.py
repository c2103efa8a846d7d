"""HTTP endpoints for grid responsibility (网格员, 责任单位) and its history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.deps import AdminUser, CurrentUser
from backend.core.deps import SessionDep
from backend.core.errors import InvalidInput
from backend.core.params import DateText, IdPath
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.grids import service
from backend.grids.api_common import GridCodePath
from backend.grids.schemas import AssignmentEnd, AssignmentIn, AssignmentList, AssignmentOut

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1", tags=["grids"], responses=PROBLEM_RESPONSES
)


@router.get("/grids/{code}/assignments", operation_id="listGridAssignments")
def list_assignments(
    code: GridCodePath,
    session: SessionDep,
    _user: CurrentUser,
    at: Annotated[DateText | None, Query(description="Only those in effect on this day")] = None,
) -> AssignmentList:
    """Responsibility history of a grid (网格员, 责任单位), oldest first."""
    return AssignmentList(
        items=[AssignmentOut.model_validate(a) for a in service.assignments(session, code, at)]
    )


@router.post("/grids/{code}/assignments", operation_id="assignGrid", status_code=201)
def assign(
    code: GridCodePath, body: AssignmentIn, session: SessionDep, admin: AdminUser
) -> AssignmentOut:
    """Make a person or unit responsible for a grid from a date."""
    if body.effective_to is not None and body.effective_to <= body.effective_from:
        raise InvalidInput("effective_to must be after effective_from")
    new = service.NewAssignment(**body.model_dump())
    return AssignmentOut.model_validate(service.assign(session, code, new, admin.username))


@router.post("/grids/{code}/assignments/{assignment_id}/end", operation_id="endGridAssignment")
def end_assignment(
    code: GridCodePath,
    assignment_id: IdPath,
    body: AssignmentEnd,
    session: SessionDep,
    admin: AdminUser,
) -> AssignmentOut:
    """End an assignment on a date; the record stays in the history."""
    return AssignmentOut.model_validate(
        service.end_assignment(session, code, assignment_id, body.effective_to, admin.username)
    )
