"""What a coordinator's case screen shows: the case, its timeline and timed steps, tasks,
reports with photo links and EXIF, the grid polygon and open cases nearby."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from backend.accounts.models import Role, User
from backend.cases import repository
from backend.cases.lifecycle import allowed_actions
from backend.cases.models import Case, CaseStatus, CaseStep
from backend.cases.review import visible_to
from backend.cases.schemas import (
    CaseDetail,
    CaseSummary,
    EventOut,
    PhotoBrief,
    ReportBrief,
    StepOut,
    TaskOut,
)
from backend.core.geojson import geometry_dict
from backend.core.runtime import Runtime
from backend.grids import repository as grids
from backend.media import service as media
from backend.reports import repository as reports

NEARBY_RADIUS_M = 200.0
NEARBY_LIMIT = 20


def summary(case: Case, now: datetime | None = None) -> CaseSummary:
    now = now or datetime.now(UTC)
    overdue = case.step is not None and case.step_deadline is not None and case.step_deadline < now
    return CaseSummary.model_validate({**_columns(case), "overdue": overdue})


def detail(session: Session, runtime: Runtime, user: User, case: Case, base_url: str) -> CaseDetail:
    now = datetime.now(UTC)
    return CaseDetail(
        **summary(case, now).model_dump(),
        allowed_actions=allowed_actions(CaseStatus(case.status), Role(user.role)),
        timeline=[EventOut.model_validate(e) for e in repository.timeline(session, case.id)],
        steps=[_step(s, now) for s in repository.steps(session, case.id)],
        tasks=[TaskOut.model_validate(t) for t in repository.tasks_of(session, case.id)],
        reports=_reports(session, runtime, case, base_url),
        grid_polygon=_grid_polygon(session, case),
        nearby=[
            summary(other, now)
            for other, _ in repository.near(
                session, case, NEARBY_RADIUS_M, limit=NEARBY_LIMIT, visible=visible_to(user)
            )
        ],
    )


def _columns(case: Case) -> dict[str, object]:
    return {name: getattr(case, name) for name in CaseSummary.model_fields if name != "overdue"}


def _step(step: CaseStep, now: datetime) -> StepOut:
    late = step.overdue if step.finished_at is not None else step.deadline < now
    return StepOut.model_validate({**_step_columns(step), "overdue": bool(late)})


def _step_columns(step: CaseStep) -> dict[str, object]:
    return {name: getattr(step, name) for name in StepOut.model_fields if name != "overdue"}


def _reports(session: Session, runtime: Runtime, case: Case, base_url: str) -> list[ReportBrief]:
    rows = repository.reports_of(session, case.id)
    photos = reports.photos_of(session, [r.id for r in rows])
    seconds = runtime.settings.media_url_seconds
    return [
        ReportBrief(
            id=r.id,
            purpose=r.purpose,
            status=r.status,
            reporter_id=r.reporter_id,
            captured_at=r.captured_at,
            received_at=r.received_at,
            lon=r.geom.x,
            lat=r.geom.y,
            flags=list(r.flags),
            photos=[
                PhotoBrief(
                    photo_id=p.photo_id,
                    role=p.role,
                    state=p.state,
                    content_type=p.detected_type or p.content_type,
                    width=p.width,
                    height=p.height,
                    flags=list(p.flags or []),
                    exif=p.exif,
                    evidence=p.evidence,
                    links=media.links(runtime, p, seconds, base_url),
                )
                for p in photos[r.id]
            ],
        )
        for r in rows
    ]


def _grid_polygon(session: Session, case: Case) -> dict[str, object] | None:
    version_id = grids.active_version_id(session)
    if case.grid_code is None or version_id is None:
        return None
    cell = grids.get_cell(session, version_id, case.grid_code)
    return geometry_dict(cell.geom) if cell is not None else None
