"""Duplicate suggestions: other open cases of the same category near a case, in place and time.

Two inspectors (or an inspector and a hotline caller) often report the same stall or the same
pile of rubbish; coordinators merge them (the ``void`` transition with ``into_case_id``). This
module only finds the candidates. How near and how recent comes from the case's category
(the taxonomy's ``duplicates``: radius in metres, window in calendar time either side of the
case's ``created_at``), else 50 m and 7 days.

Distances are metres on the WGS-84 ellipsoid on both profiles, so both suggest the same cases:

* PostgreSQL: ``geom && envelope`` lets the GiST index ``ix_cases_geom`` (on geometry) pick the
  candidates, then ``ST_DWithin``/``ST_Distance`` on geography measure exactly (spheroid).
  ``ST_DWithin`` on geography alone would not use a geometry index.
* SQLite: the same envelope as lon/lat ranges (index ``ix_cases_lon_lat``), then
  :func:`backend.geo.metric.distances_m` in Python (ellipsoidal local radii: within a
  millimetre of the geodesic at these distances).

The envelope comes from :func:`~backend.geo.metric.metres_to_degrees_bounds`, which
over-covers on purpose: a prefilter that is too wide costs a distance check, one too narrow
silently drops a duplicate. It does not wrap the antimeridian (Chinese cities never need it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import shapely
from geoalchemy2 import Geography
from sqlalchemy import Row, Select, cast, func, select
from sqlalchemy.orm import Session

from backend.cases.errors import CaseNotFound
from backend.cases.models import FINAL_STATUSES, Case
from backend.categories import repository as categories
from backend.categories.taxonomy import duplicate_rule
from backend.geo import metric

__all__ = ["DuplicateRule", "Suggestion", "load_case", "rule_for", "suggest"]

_FINAL = sorted(status.value for status in FINAL_STATUSES)
Envelope = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat
# id, created_at, status, report_count, grid_code, address
Candidates = Select[int, datetime, str, int, str | None, str]


@dataclass(frozen=True)
class DuplicateRule:
    radius_m: float
    window: timedelta  # calendar time, either side of the case's created_at


@dataclass(frozen=True)
class Suggestion:
    case_id: int
    distance_m: float
    created_at: datetime
    status: str
    report_count: int
    grid_code: str | None
    address: str


def load_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise CaseNotFound(f"case {case_id} does not exist")
    return case


def rule_for(session: Session, category_code: str) -> DuplicateRule:
    """The category's settings (resolved with inheritance at import), else the defaults.

    A retired (inactive) category keeps its settings: its open cases still need them.
    """
    category = categories.by_code(session, category_code)
    own = (None, None) if category is None else (category.dup_radius_m, category.dup_window_minutes)
    radius_m, minutes = duplicate_rule(*own)
    return DuplicateRule(radius_m, timedelta(minutes=minutes))


def suggest(
    session: Session, case: Case, *, limit: int = 10, unit_code: str | None = None
) -> list[Suggestion]:
    """Open cases that may be duplicates of ``case``, nearest first (ties: lowest id first).

    ``unit_code`` keeps only cases whose grid code starts with it (a command-centre user's
    org unit), in the query, so that ``limit`` counts only what the caller may see.
    """
    rule = rule_for(session, case.category_code)
    dlon, dlat = metric.metres_to_degrees_bounds(case.lat, rule.radius_m)
    envelope = (case.lon - dlon, case.lat - dlat, case.lon + dlon, case.lat + dlat)
    query = select(
        Case.id, Case.created_at, Case.status, Case.report_count, Case.grid_code, Case.address
    ).where(
        Case.category_code == case.category_code,
        Case.status.not_in(_FINAL),
        Case.created_at.between(case.created_at - rule.window, case.created_at + rule.window),
    )
    if case.id is not None:  # a case being opened is not stored yet
        query = query.where(Case.id != case.id)
    if unit_code is not None:
        query = query.where(Case.grid_code.startswith(unit_code, autoescape=True))
    if session.get_bind().dialect.name == "postgresql":
        return _postgis(session, query, case, envelope, rule.radius_m, limit)
    return _sqlite(session, query, case, envelope, rule.radius_m, limit)


def _postgis(
    session: Session,
    query: Candidates,
    case: Case,
    envelope: Envelope,
    radius_m: float,
    limit: int,
) -> list[Suggestion]:
    geography = Geography(srid=4326)
    here = cast(func.ST_SetSRID(func.ST_MakePoint(case.lon, case.lat), 4326), geography)
    there = cast(Case.geom, geography)
    distance = func.ST_Distance(there, here).label("distance_m")
    rows = session.execute(
        query.add_columns(distance)
        .where(
            Case.geom.op("&&")(func.ST_MakeEnvelope(*envelope, 4326)),
            func.ST_DWithin(there, here, radius_m),
        )
        .order_by(distance, Case.id)
        .limit(limit)
    ).all()
    return [_suggestion(row, float(row.distance_m)) for row in rows]


def _sqlite(
    session: Session,
    query: Candidates,
    case: Case,
    envelope: Envelope,
    radius_m: float,
    limit: int,
) -> list[Suggestion]:
    min_lon, min_lat, max_lon, max_lat = envelope
    rows = session.execute(
        query.add_columns(Case.lon, Case.lat).where(
            Case.lon.between(min_lon, max_lon), Case.lat.between(min_lat, max_lat)
        )
    ).all()
    if not rows:
        return []
    # The envelope and window leave a handful of rows: measuring them here is cheap.
    points = shapely.points([row.lon for row in rows], [row.lat for row in rows])
    distances = metric.distances_m(case.lon, case.lat, points)
    near = [(float(d), row) for d, row in zip(distances, rows, strict=True) if d <= radius_m]
    near.sort(key=lambda pair: (pair[0], pair[1].id))
    return [_suggestion(row, d) for d, row in near[:limit]]


def _suggestion(row: Row[Any], distance_m: float) -> Suggestion:
    return Suggestion(
        case_id=row.id,
        distance_m=distance_m,
        created_at=row.created_at,
        status=row.status,
        report_count=row.report_count,
        grid_code=row.grid_code,
        address=row.address,
    )
