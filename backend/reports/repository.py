"""Queries of the reports domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.media.models import Photo
from backend.reports.models import Report


def get(session: Session, report_id: str) -> Report | None:
    return session.get(Report, report_id)


def get_for_update(session: Session, report_id: str) -> Report | None:
    """The report, locked until commit: concurrent edits from two phones queue here.

    Re-read from the database (another transaction may have changed it before we got the
    lock), so this session's pending changes are flushed first, never overwritten."""
    session.flush()
    return session.scalar(
        select(Report)
        .where(Report.id == report_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def add(session: Session, report: Report, photos: Sequence[Photo]) -> None:
    # Two flushes: without a relationship() between them the unit of work does not order
    # the two mappers by their foreign key, and a photo row must follow its report.
    session.add(report)
    session.flush()
    session.add_all(photos)
    session.flush()


def photos_of(session: Session, report_ids: Sequence[str]) -> dict[str, list[Photo]]:
    found: dict[str, list[Photo]] = {rid: [] for rid in report_ids}
    if not report_ids:
        return found
    rows = session.scalars(
        select(Photo)
        .where(Photo.report_id.in_(report_ids))
        .order_by(Photo.report_id, Photo.position)
    )
    for photo in rows:
        found[photo.report_id].append(photo)
    return found


def photo_ids_taken(session: Session, photo_ids: Sequence[str]) -> list[str]:
    if not photo_ids:
        return []
    return list(session.scalars(select(Photo.photo_id).where(Photo.photo_id.in_(photo_ids))))


def visible_query(user_id: int, grid_codes: Sequence[str]):  # type: ignore[no-untyped-def]
    """Live reports a user's devices see: their own, and those in their grids."""
    conditions = [Report.reporter_id == user_id]
    if grid_codes:
        conditions.append(Report.grid_code.in_(grid_codes))
    return select(Report).where(Report.deleted_at.is_(None), or_(*conditions))


def visible_page(
    session: Session, user_id: int, grid_codes: Sequence[str], after_id: str | None, limit: int
) -> list[Report]:
    query = visible_query(user_id, grid_codes).order_by(Report.id).limit(limit)
    if after_id is not None:
        query = query.where(Report.id > after_id)
    return list(session.scalars(query).all())


def visible_versions(
    session: Session, user_id: int, grid_codes: Sequence[str]
) -> list[tuple[str, int]]:
    query = visible_query(user_id, grid_codes).with_only_columns(Report.id, Report.version)
    return [(r[0], int(r[1])) for r in session.execute(query).all()]


def in_grids(session: Session, grid_codes: Sequence[str]) -> list[Report]:
    """Live reports located in any of these grids (scope changes)."""
    if not grid_codes:
        return []
    query = select(Report).where(Report.deleted_at.is_(None), Report.grid_code.in_(grid_codes))
    return list(session.scalars(query).all())


def many(session: Session, report_ids: Sequence[str]) -> dict[str, Report]:
    if not report_ids:
        return {}
    return {r.id: r for r in session.scalars(select(Report).where(Report.id.in_(report_ids)))}
