"""Every query of the grids domain. Services call these; nothing else touches the tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import shapely
from sqlalchemy import Select, and_, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from backend.grids.models import GridAssignment, GridCell, GridVersion

# -- versions -------------------------------------------------------------------------------


def add_version(session: Session, version: GridVersion) -> GridVersion:
    session.add(version)
    session.flush()
    return version


def get_version(session: Session, version_id: int) -> GridVersion | None:
    return session.get(GridVersion, version_id)


def list_versions(session: Session) -> Sequence[GridVersion]:
    return session.scalars(select(GridVersion).order_by(GridVersion.id.desc())).all()


def active_version_id(session: Session) -> int | None:
    return session.scalar(select(GridVersion.id).where(GridVersion.is_active.is_(True)))


def active_version_and_seq(session: Session) -> tuple[int, int] | None:
    row = session.execute(
        select(GridVersion.id, GridVersion.activation_seq).where(GridVersion.is_active.is_(True))
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def lock_versions(session: Session) -> None:
    """Serialise activations: concurrent ones queue here instead of racing the unique index."""
    if session.get_bind().dialect.name == "postgresql":
        # A fixed lock order (by id): without it, two activations lock rows in physical
        # order, which changes as rows are updated, and deadlock each other.
        session.execute(select(GridVersion.id).order_by(GridVersion.id).with_for_update())
    # SQLite: BEGIN IMMEDIATE already holds the database write lock.


def set_active(session: Session, version_id: int, when: Any) -> None:
    session.execute(
        update(GridVersion)
        .where(GridVersion.is_active.is_(True), GridVersion.id != version_id)
        .values(is_active=False)
    )
    next_seq = select(func.coalesce(func.max(GridVersion.activation_seq), 0) + 1).scalar_subquery()
    session.execute(
        update(GridVersion)
        .where(GridVersion.id == version_id)
        .values(is_active=True, activated_at=when, activation_seq=next_seq)
    )


# -- cells ----------------------------------------------------------------------------------


def insert_cells(session: Session, rows: Iterable[dict[str, Any]], batch: int = 1000) -> int:
    """Bulk insert; rows carry every column including ``geom`` as a Shapely geometry."""
    count = 0
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch:
            session.execute(insert(GridCell), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        session.execute(insert(GridCell), chunk)
        count += len(chunk)
    return count


def load_cell_geometries(
    session: Session, version_id: int
) -> tuple[list[str], list[shapely.Geometry]]:
    rows = session.execute(
        select(GridCell.code, GridCell.geom).where(GridCell.version_id == version_id)
    ).all()
    return [r[0] for r in rows], [r[1] for r in rows]


def get_cell(session: Session, version_id: int, code: str) -> GridCell | None:
    return session.scalar(
        select(GridCell).where(GridCell.version_id == version_id, GridCell.code == code)
    )


@dataclass(frozen=True)
class CellFilter:
    version_id: int
    parent_code: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    zone_tier: str | None = None
    after_code: str | None = None
    limit: int = 100


def list_cells(session: Session, flt: CellFilter) -> tuple[list[GridCell], str | None]:
    """One page of cells ordered by code, and the cursor for the next page (None at the end).

    A page can hold fewer than ``limit`` cells when the bbox prefilter over-selects on SQLite
    (exact tests run in Shapely there); the cursor is what tells a client to continue.
    """
    query = _cells_query(session, flt).limit(flt.limit)
    fetched = list(session.scalars(query).all())
    next_code = fetched[-1].code if len(fetched) == flt.limit else None
    if flt.bbox is not None and session.get_bind().dialect.name != "postgresql":
        envelope = shapely.box(*flt.bbox)
        shapely.prepare(envelope)
        fetched = [c for c in fetched if envelope.intersects(c.geom)]
    return fetched, next_code


def iter_cells(session: Session, flt: CellFilter, page: int = 2000) -> Iterable[GridCell]:
    """Every cell matching the filter, streamed page by page (exports)."""
    after = flt.after_code
    while True:
        cells, after = list_cells(
            session,
            CellFilter(flt.version_id, flt.parent_code, flt.bbox, flt.zone_tier, after, page),
        )
        yield from cells
        if after is None:
            return


def _cells_query(session: Session, flt: CellFilter) -> Select[GridCell]:
    query = select(GridCell).where(GridCell.version_id == flt.version_id).order_by(GridCell.code)
    if flt.parent_code:
        p = flt.parent_code
        query = query.where(
            or_(
                GridCell.district_code == p, GridCell.street_code == p, GridCell.community_code == p
            )
        )
    if flt.zone_tier:
        query = query.where(GridCell.zone_tier == flt.zone_tier)
    if flt.after_code:
        query = query.where(GridCell.code > flt.after_code)
    if flt.bbox is not None:
        x0, y0, x1, y1 = flt.bbox
        query = query.where(
            and_(
                GridCell.min_x <= x1,
                GridCell.max_x >= x0,
                GridCell.min_y <= y1,
                GridCell.max_y >= y0,
            )
        )
        if session.get_bind().dialect.name == "postgresql":
            envelope = func.ST_MakeEnvelope(x0, y0, x1, y1, 4326)
            query = query.where(func.ST_Intersects(GridCell.geom, envelope))
    return query


def count_cells(session: Session, version_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(GridCell).where(GridCell.version_id == version_id)
        )
        or 0
    )


# -- PostGIS matching (batch / SQL use; the service matches in process) ---------------------


def covering_codes_sql(session: Session, version_id: int, lon: float, lat: float) -> list[str]:
    """Codes of every grid covering the point, ascending: ST_Covers over the GiST index."""
    point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    return list(
        session.scalars(
            select(GridCell.code)
            .where(GridCell.version_id == version_id, func.ST_Covers(GridCell.geom, point))
            .order_by(GridCell.code)
        ).all()
    )


BULK_COVERS_SQL = """
SELECT p.idx, min(c.code) AS code, count(c.code) AS candidates
FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS p(lon, lat, idx)
LEFT JOIN grid_cells c
  ON c.version_id = :version_id
 AND ST_Covers(c.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
GROUP BY p.idx
ORDER BY p.idx
"""


def covering_codes_bulk_sql(
    session: Session, version_id: int, lons: Sequence[float], lats: Sequence[float]
) -> list[tuple[str | None, int]]:
    """For each point: the lowest covering code (or None) and the number of covering grids."""
    rows = session.execute(
        text(BULK_COVERS_SQL),
        {"lons": list(lons), "lats": list(lats), "version_id": version_id},
    ).all()
    return [(row.code, int(row.candidates)) for row in rows]


# -- assignments ----------------------------------------------------------------------------


def lock_grid_assignments(session: Session, grid_code: str) -> None:
    """Serialise assignment changes of one grid, so the overlap check cannot race."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"grid_assignments:{grid_code}"},
        )
    # SQLite: BEGIN IMMEDIATE already holds the database write lock.


def add_assignment(session: Session, assignment: GridAssignment) -> GridAssignment:
    session.add(assignment)
    session.flush()
    return assignment


def get_assignment(session: Session, assignment_id: int) -> GridAssignment | None:
    return session.get(GridAssignment, assignment_id)


def list_assignments(
    session: Session, grid_code: str, at: date | None = None
) -> Sequence[GridAssignment]:
    query = select(GridAssignment).where(GridAssignment.grid_code == grid_code)
    if at is not None:
        query = query.where(
            GridAssignment.effective_from <= at,
            or_(GridAssignment.effective_to.is_(None), GridAssignment.effective_to > at),
        )
    return session.scalars(query.order_by(GridAssignment.effective_from, GridAssignment.id)).all()


def overlapping_assignments(
    session: Session, grid_code: str, role: str, assignee_name: str, start: date, end: date | None
) -> Sequence[GridAssignment]:
    """The same person/unit already holding the same role on this grid in an overlapping period."""
    query = select(GridAssignment).where(
        GridAssignment.grid_code == grid_code,
        GridAssignment.role == role,
        GridAssignment.assignee_name == assignee_name,
        or_(GridAssignment.effective_to.is_(None), GridAssignment.effective_to > start),
    )
    if end is not None:
        query = query.where(GridAssignment.effective_from < end)
    return session.scalars(query).all()
