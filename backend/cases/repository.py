"""Queries of the cases domain (services call these; they never build SQL themselves)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.accounts.models import Role, User
from backend.cases.models import (
    FINAL_STATUSES,
    Case,
    CaseEvent,
    CaseStep,
    Department,
    Task,
    TaskKind,
    TaskStatus,
)
from backend.cases.review import overdue_clause
from backend.geo import metric
from backend.grids.models import AssigneeKind, GridAssignment
from backend.media.models import Photo
from backend.reports.models import Report


def get(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def get_for_update(session: Session, case_id: int) -> Case | None:
    """The case, locked until the transaction ends (two coordinators acting at once queue);
    pending changes are flushed first (the row is re-read under the lock)."""
    session.flush()
    return session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def department(session: Session, code: str) -> Department | None:
    return session.get(Department, code)


def departments(session: Session, *, include_inactive: bool = False) -> Sequence[Department]:
    query = select(Department).order_by(Department.code)
    if not include_inactive:
        query = query.where(Department.active.is_(True))
    return session.scalars(query).all()


def timeline(session: Session, case_id: int) -> Sequence[CaseEvent]:
    return session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
    ).all()


def steps(session: Session, case_id: int) -> Sequence[CaseStep]:
    return session.scalars(
        select(CaseStep).where(CaseStep.case_id == case_id).order_by(CaseStep.id)
    ).all()


def reports_of(session: Session, case_id: int) -> Sequence[Report]:
    return session.scalars(
        select(Report)
        .where(Report.case_id == case_id, Report.deleted_at.is_(None))
        .order_by(Report.received_at, Report.id)
    ).all()


def stored_photo_roles(session: Session, case_id: int, purpose: str) -> set[str]:
    """Roles of the stored photos of a case's reports of one purpose (e.g. violation)."""
    rows = session.scalars(
        select(Photo.role)
        .join(Report, Report.id == Photo.report_id)
        .where(
            Report.case_id == case_id,
            Report.purpose == purpose,
            Report.deleted_at.is_(None),
            Photo.state == "stored",
        )
        .distinct()
    ).all()
    return set(rows)


def count_reports(session: Session, case_id: int, purpose: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Report)
            .where(
                Report.case_id == case_id,
                Report.purpose == purpose,
                Report.deleted_at.is_(None),
            )
        )
        or 0
    )


def open_tasks(session: Session, case_id: int, kind: TaskKind | None = None) -> Sequence[Task]:
    query = select(Task).where(Task.case_id == case_id, Task.status == TaskStatus.open.value)
    if kind is not None:
        query = query.where(Task.kind == kind.value)
    return session.scalars(query.order_by(Task.created_at)).all()


def open_department_tasks(session: Session, department_code: str) -> Sequence[Task]:
    return session.scalars(
        select(Task).where(
            Task.department_code == department_code,
            Task.kind == TaskKind.handle.value,
            Task.status == TaskStatus.open.value,
        )
    ).all()


def last_task(session: Session, case_id: int, kind: TaskKind) -> Task | None:
    return session.scalar(
        select(Task)
        .where(Task.case_id == case_id, Task.kind == kind.value)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(1)
    )


def task(session: Session, task_id: str) -> Task | None:
    return session.get(Task, task_id)


def task_for_update(session: Session, task_id: str) -> Task | None:
    session.flush()  # the row is re-read under the lock: keep this session's changes
    return session.scalar(
        select(Task)
        .where(Task.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def department_handlers(session: Session, department_code: str) -> list[int]:
    return list(
        session.scalars(
            select(User.id).where(
                User.department_code == department_code,
                User.role == Role.department_handler.value,
                User.is_active.is_(True),
            )
        ).all()
    )


def grid_inspectors(session: Session, grid_code: str, day: date) -> list[User]:
    """Active inspectors responsible for a grid on ``day`` (named assignments), by username."""
    assigned = (
        select(GridAssignment.assignee_ref)
        .where(
            GridAssignment.grid_code == grid_code,
            GridAssignment.kind == AssigneeKind.person.value,
            GridAssignment.effective_from <= day,
            or_(GridAssignment.effective_to.is_(None), GridAssignment.effective_to > day),
        )
        .scalar_subquery()
    )
    return list(
        session.scalars(
            select(User)
            .where(
                User.username.in_(assigned),
                User.role == Role.inspector.value,
                User.is_active.is_(True),
            )
            .order_by(User.username)
        ).all()
    )


def patrols_under(session: Session, username: str, prefix: str, day: date) -> bool:
    """Is ``username`` named for a grid whose code starts with ``prefix`` on ``day``?"""
    return bool(
        session.scalar(
            select(
                exists().where(
                    GridAssignment.assignee_ref == username,
                    GridAssignment.kind == AssigneeKind.person.value,
                    GridAssignment.grid_code.startswith(prefix, autoescape=True),
                    GridAssignment.effective_from <= day,
                    or_(GridAssignment.effective_to.is_(None), GridAssignment.effective_to > day),
                )
            )
        )
    )


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def overdue(
    session: Session, now: datetime, *, limit: int, visible: ColumnElement[bool]
) -> Sequence[Case]:
    """Cases whose running step is past its deadline, the longest overdue first."""
    query = select(Case).where(overdue_clause(now), visible)
    return session.scalars(query.order_by(Case.step_deadline, Case.id).limit(limit)).all()


def near(
    session: Session, case: Case, radius_m: float, *, limit: int, visible: ColumnElement[bool]
) -> list[tuple[Case, float]]:
    """Open cases the caller may see (``visible``) within ``radius_m`` of ``case``, nearest
    first (bbox on indexed lon/lat, then exact metres; the same on both profiles)."""
    dlon, dlat = metric.metres_to_degrees_bounds(case.lat, radius_m)
    candidates = session.scalars(
        select(Case).where(
            Case.id != case.id,
            Case.lon.between(case.lon - dlon, case.lon + dlon),
            Case.lat.between(case.lat - dlat, case.lat + dlat),
            Case.status.not_in([s.value for s in FINAL_STATUSES]),
            visible,
        )
    ).all()
    if not candidates:
        return []
    distances = metric.distances_m(case.lon, case.lat, [c.geom for c in candidates])
    found = [(c, float(d)) for c, d in zip(candidates, distances, strict=True) if d <= radius_m]
    return sorted(found, key=lambda pair: (pair[1], pair[0].id))[:limit]


def tasks_of(session: Session, case_id: int) -> Sequence[Task]:
    return session.scalars(
        select(Task).where(Task.case_id == case_id).order_by(Task.created_at, Task.id)
    ).all()
