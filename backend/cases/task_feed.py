"""Tasks as phones receive them through pull (docs/sync-protocol.md §3, entity ``task``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.accounts.models import User
from backend.cases.models import Case, Task
from backend.cases.tasks import visible_filter
from backend.media.models import Photo
from backend.reports.models import Report, ReportPurpose


def visible_page(session: Session, user: User, after_id: str | None, limit: int) -> list[Task]:
    query = select(Task).where(visible_filter(user)).order_by(Task.id).limit(limit)
    if after_id is not None:
        query = query.where(Task.id > after_id)
    return list(session.scalars(query).all())


def visible_versions(session: Session, user: User) -> list[tuple[str, int]]:
    rows = session.execute(select(Task.id, Task.version).where(visible_filter(user))).all()
    return [(row[0], row[1]) for row in rows]


def many(session: Session, task_ids: Sequence[str]) -> dict[str, Task]:
    if not task_ids:
        return {}
    rows = session.scalars(select(Task).where(Task.id.in_(task_ids))).all()
    return {t.id: t for t in rows}


def payloads(session: Session, tasks: Sequence[Task]) -> dict[str, dict[str, Any]]:
    """What the phone needs to go and do the task: where, what, by when, and the photos of
    the problem as found (fetched with GET /api/v1/photos/{photo_id})."""
    case_ids = sorted({t.case_id for t in tasks})
    if not case_ids:
        return {}
    cases = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_(case_ids))).all()}
    photo_rows = session.execute(
        select(Report.case_id, Photo.photo_id)
        .join(Photo, Photo.report_id == Report.id)
        .where(
            Report.case_id.in_(case_ids),
            Report.purpose == ReportPurpose.violation.value,
            Report.deleted_at.is_(None),
            Photo.state == "stored",
        )
        .order_by(Report.received_at, Photo.position)
    ).all()
    photos: dict[int, list[str]] = {cid: [] for cid in case_ids}
    for case_id, photo_id in photo_rows:
        if case_id is not None:  # the query filters on it; the column is nullable
            photos[case_id].append(photo_id)
    return {t.id: _payload(t, cases[t.case_id], photos[t.case_id]) for t in tasks}


def _payload(task: Task, case: Case, photo_ids: list[str]) -> dict[str, Any]:
    return {
        "id": task.id,
        "kind": task.kind,
        "status": task.status,
        "case": {
            "id": case.id,
            "status": case.status,
            "category_code": case.category_code,
            "description": case.description,
            "address": case.address,
            "wgs84": {"lon": case.lon, "lat": case.lat},
            "grid_code": case.grid_code,
            "rework_count": case.rework_count,
        },
        "department_code": task.department_code,
        "assignee_id": task.assignee_id,
        "due_at": _utc(task),
        "photo_ids": photo_ids,
        "version": task.version,
    }


def _utc(task: Task) -> str | None:
    if task.due_at is None:
        return None
    return task.due_at.isoformat().replace("+00:00", "Z")
