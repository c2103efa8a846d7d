"""Reports for the command centre: read one, set its review status.

The full case workflow arrives with the cases domain; until then the status endpoint is the
command centre's only write, which is enough to exercise server-owned fields in sync.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from backend.accounts import scope
from backend.accounts.deps import CurrentUser, require_roles
from backend.accounts.models import Role, User
from backend.core.deps import SessionDep
from backend.core.errors import Forbidden
from backend.core.problems import PROBLEM_RESPONSES
from backend.reports import repository, service
from backend.reports.schemas import ReportOut, StatusIn

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=PROBLEM_RESPONSES)
ReportIdPath = Annotated[str, Path(min_length=36, max_length=36)]
Reviewer = Annotated[
    User, Depends(require_roles(Role.intake_operator, Role.shift_lead, Role.admin))
]


@router.get("/{report_id}", operation_id="getReport")
def get_report(report_id: ReportIdPath, session: SessionDep, user: CurrentUser) -> ReportOut:
    """One report (its reporter, or command-centre staff whose unit covers its grid)."""
    report = service.get(session, report_id)
    if report.reporter_id != user.id and not scope.covers(user, report.grid_code):
        raise Forbidden("this report is outside your area")
    photos = repository.photos_of(session, [report.id])[report.id]
    return ReportOut(report=service.payload(report, photos), deleted=report.deleted_at is not None)


@router.post("/{report_id}/status", operation_id="setReportStatus")
def set_status(
    report_id: ReportIdPath, body: StatusIn, session: SessionDep, user: Reviewer
) -> ReportOut:
    """Set a report's review status (server-owned: phones' edits to it are ignored)."""
    if not scope.covers(user, service.get(session, report_id).grid_code):
        raise Forbidden("this report is outside your area")
    report = service.set_status(session, report_id, body.status, user.username)
    photos = repository.photos_of(session, [report.id])[report.id]
    return ReportOut(report=service.payload(report, photos), deleted=False)
