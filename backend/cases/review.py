"""The coordinators' review queries over cases: who may see which case, the list filters,
keyset pages, and the export stream. Routers and tiles call these; nothing else builds them.

Scope is one SQL expression (:func:`visible_to`) ANDed into every query, so a filter, a
cursor or a tile can never widen what a user sees.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from backend.accounts.models import Role, User
from backend.accounts.scope import COMMAND_CENTRE
from backend.cases.models import Case, Task, TaskStatus
from backend.core.db import transaction
from backend.reports.models import Report

MAX_PAGE: Final = 200
# One export holds at most this many features (~40 MB of GeoJSON); more is refused up front.
MAX_EXPORT: Final = 100_000
EXPORT_BATCH: Final = 2_000


# -- scope ----------------------------------------------------------------------------------


def visible_to(user: User) -> ColumnElement[bool]:
    """The cases ``user`` may see, as a WHERE clause (SQL twin of ``scope.covers`` & co).

    Admins: all. Command centre: cases whose grid code starts with their unit code (a case
    without a grid only for city-wide staff, unit None). Department handlers: cases
    dispatched to their department. Inspectors: the cases they reported. Anyone else: none.
    """
    role = Role(user.role)
    if role is Role.admin:
        return true()
    if role in COMMAND_CENTRE:
        if user.unit_code is None:
            return true()
        # NULL grid_code makes LIKE NULL, i.e. not visible: what covers() answers for None.
        return Case.grid_code.startswith(user.unit_code, autoescape=True)
    if role is Role.department_handler:
        if user.department_code is None:
            return false()
        return Case.department_code == user.department_code
    if role is Role.inspector:
        # Their reports' cases (also a case their report was merged into) and the cases
        # they hold an open task for.
        own_report = exists().where(Report.case_id == Case.id, Report.reporter_id == user.id)
        open_task = exists().where(
            Task.case_id == Case.id,
            Task.assignee_id == user.id,
            Task.status == TaskStatus.open.value,
        )
        return or_(Case.reporter_id == user.id, own_report, open_task)
    return false()


def may_see(session: Session, user: User, case_id: int) -> bool:
    """``visible_to`` for one case (the one definition of scope, in SQL)."""
    return bool(session.scalar(select(exists().where(Case.id == case_id, visible_to(user)))))


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """A step is running (final cases have none) and its deadline has passed.

    Never NULL (the IS NOT NULL terms make it false instead), so its negation is exact.
    """
    return and_(Case.step.is_not(None), Case.step_deadline.is_not(None), Case.step_deadline < now)


# -- filters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilter:
    """What a coordinator asked for; empty tuples and None mean "any"."""

    statuses: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    category: str | None = None  # a code or a major's prefix ("05" matches "0504")
    grid: str | None = None  # a grid code or any prefix: district, street, community
    department_code: str | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    bbox: tuple[float, float, float, float] | None = None
    flags: tuple[str, ...] = ()  # any of them
    overdue: bool | None = None
    q: str | None = None  # substring of description or address, case-insensitive

    def digest(self) -> str:
        """A short fingerprint, so a cursor is only accepted with the filters it came from."""
        text = json.dumps(asdict(self), default=str, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flags_clause(flags: Sequence[str], dialect: str) -> ColumnElement[bool]:
    # The column is JSON (not JSONB): PostgreSQL casts it for `?|`; SQLite walks json_each.
    if dialect == "postgresql":
        as_jsonb = cast(Case.flags, postgresql.JSONB)
        return as_jsonb.bool_op("?|")(postgresql.array(list(flags)))
    each = func.json_each(Case.flags).table_valued("value").alias("flag")
    return exists().select_from(each).where(each.c.value.in_(list(flags)))


def conditions(
    user: User, flt: CaseFilter, *, dialect: str, now: datetime
) -> list[ColumnElement[bool]]:
    """Scope plus every filter, ready for ``.where(*...)``."""
    out = [visible_to(user)]
    if flt.statuses:
        out.append(Case.status.in_(flt.statuses))
    if flt.sources:
        out.append(Case.source.in_(flt.sources))
    if flt.category:
        out.append(Case.category_code.startswith(flt.category, autoescape=True))
    if flt.grid:
        out.append(Case.grid_code.startswith(flt.grid, autoescape=True))
        if dialect == "sqlite":  # SQLite's LIKE ignores ASCII case; codes with letters must not
            out.append(func.substr(Case.grid_code, 1, len(flt.grid)) == flt.grid)
    if flt.department_code:
        out.append(Case.department_code == flt.department_code)
    if flt.created_from is not None:
        out.append(Case.created_at >= flt.created_from)
    if flt.created_to is not None:
        out.append(Case.created_at < flt.created_to)
    if flt.bbox is not None:
        x0, y0, x1, y1 = flt.bbox
        out.append(and_(Case.lon.between(x0, x1), Case.lat.between(y0, y1)))
        if dialect == "postgresql":  # same rows (points), but through the GiST index
            out.append(Case.geom.bool_op("&&")(func.ST_MakeEnvelope(x0, y0, x1, y1, 4326)))
    if flt.flags:
        out.append(_flags_clause(flt.flags, dialect))
    if flt.overdue is True:
        out.append(overdue_clause(now))
    elif flt.overdue is False:
        out.append(not_(overdue_clause(now)))
    if flt.q:
        out.append(
            or_(
                Case.description.icontains(flt.q, autoescape=True),
                Case.address.icontains(flt.q, autoescape=True),
            )
        )
    return out


# -- sorting and keyset pages ---------------------------------------------------------------


@dataclass(frozen=True)
class Sort:
    column: InstrumentedAttribute[Any]
    descending: bool = False
    nullable: bool = False  # NULLs sort last

    @property
    def key(self) -> str:
        return self.column.key


SORTS: Final[dict[str, Sort]] = {
    "-created_at": Sort(Case.created_at, descending=True),
    "created_at": Sort(Case.created_at),
    "-updated_at": Sort(Case.updated_at, descending=True),
    "step_deadline": Sort(Case.step_deadline, nullable=True),
}
DEFAULT_SORT: Final = "-created_at"

SUMMARY_COLUMNS: Final[tuple[Any, ...]] = (
    Case.id,
    Case.status,
    Case.source,
    Case.category_code,
    Case.description,
    Case.address,
    Case.lon,
    Case.lat,
    Case.grid_code,
    Case.department_code,
    Case.report_count,
    Case.flags,
    Case.step,
    Case.step_deadline,
    Case.created_at,
    Case.updated_at,
    Case.version,
)


def _order_by(sort: Sort) -> list[Any]:
    col, ident = sort.column, Case.id
    if sort.descending:
        return [col.desc(), ident.desc()]
    return [col.asc().nulls_last() if sort.nullable else col.asc(), ident.asc()]


def _after(sort: Sort, value: datetime | None, last_id: int) -> ColumnElement[bool]:
    """Rows strictly after (value, last_id) in the sort order; the id breaks ties."""
    col, ident = sort.column, Case.id
    if value is None:  # only a nullable ascending sort gets here: we are in the NULL tail
        return and_(col.is_(None), ident > last_id)
    if sort.descending:
        return or_(col < value, and_(col == value, ident < last_id))
    later = or_(col > value, and_(col == value, ident > last_id))
    return or_(later, col.is_(None)) if sort.nullable else later


@dataclass(frozen=True)
class Page:
    rows: list[Row[Any]]
    # The sort value and id of the last row when more follow; None at the end.
    next_key: tuple[datetime | None, int] | None


def page(
    session: Session,
    where: Sequence[ColumnElement[bool]],
    sort: Sort,
    after: tuple[datetime | None, int] | None,
    limit: int,
) -> Page:
    query = select(*SUMMARY_COLUMNS).where(*where)
    if after is not None:
        query = query.where(_after(sort, *after))
    rows: list[Row[Any]] = list(
        session.execute(query.order_by(*_order_by(sort)).limit(limit + 1)).all()
    )
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    return Page(rows, (getattr(last, sort.key), last.id))


def summary(row: Row[Any], now: datetime) -> dict[str, Any]:
    """One case as the list and the export show it."""
    item = dict(row._mapping)
    deadline = item["step_deadline"]
    item["overdue"] = item["step"] is not None and deadline is not None and deadline < now
    item["flags"] = list(item["flags"] or [])
    return item


# -- export ---------------------------------------------------------------------------------


def count(session: Session, where: Sequence[ColumnElement[bool]]) -> int:
    return int(session.scalar(select(func.count()).select_from(Case).where(*where)) or 0)


def iter_export(
    sessions: sessionmaker[Session], where: Sequence[ColumnElement[bool]], cap: int
) -> Iterator[Row[Any]]:
    """Matching cases by id, each batch in its own short read transaction.

    The response streams after the request's transaction has ended, and a slow client must
    not hold a pooled connection (or a SQLite read snapshot) for the whole download; the id
    keyset never repeats a case. ``cap`` bounds the stream even if cases arrive meanwhile.
    """
    last_id, sent = 0, 0
    while sent < cap:
        size = min(EXPORT_BATCH, cap - sent)
        with transaction(sessions) as session:
            rows: Sequence[Row[Any]] = session.execute(
                select(*SUMMARY_COLUMNS)
                .where(*where, Case.id > last_id)
                .order_by(Case.id)
                .limit(size)
            ).all()
        yield from rows
        sent += len(rows)
        if len(rows) < size:
            return
        last_id = rows[-1].id
