"""Reports for the command centre: read one. Decisions are taken on the report's case
(backend.cases); the report's status shows phones the outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from backend.accounts.deps import CurrentUser
from backend.core.deps import RuntimeDep, SessionDep
from backend.core.errors import Forbidden
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.media import service as media
from backend.reports import repository, service
from backend.reports.schemas import ReportOut

router = APIRouter(
    route_class=OneThreadRoute,
    prefix="/api/v1/reports",
    tags=["reports"],
    responses=PROBLEM_RESPONSES,
)
ReportIdPath = Annotated[str, Path(min_length=36, max_length=36)]


@router.get("/{report_id}", operation_id="getReport")
def get_report(
    report_id: ReportIdPath, session: SessionDep, runtime: RuntimeDep, user: CurrentUser
) -> ReportOut:
    """One report: its reporter's, the command centre's by unit, its case's department and
    task holders', and the inspectors' responsible for its grid (as in sync)."""
    report = service.get(session, report_id)
    if not media.may_see(session, runtime, user, report):
        raise Forbidden("this report is outside your area")
    photos = repository.photos_of(session, [report.id])[report.id]
    return ReportOut(report=service.payload(report, photos), deleted=report.deleted_at is not None)
