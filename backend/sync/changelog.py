"""Writing and reading the change log that pulls follow (docs/sync-protocol.md §5).

Every write to a synced record adds one entry, in the same transaction as the write. On
PostgreSQL the entry carries the writing transaction's id; a pull only reads entries from
transactions older than every transaction still running, so a transaction that commits late
can never fall behind a cursor that was already handed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, insert, literal, or_, select, text, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.sync.models import ChangeLogEntry, SyncHorizon

# pg_current_xact_id() assigns the transaction an id if it has none yet; xid8 is 64-bit and
# never wraps. SQLite serialises writers, so commit order is seq order and xid stays 0.
_PG_XID = text("pg_current_xact_id()::text::bigint")
_PG_VISIBLE_BELOW = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
# The largest integer every JSON parser (and so every cursor) carries exactly.
NO_LIMIT = 2**53 - 1


@dataclass(frozen=True, order=True)
class Position:
    """A place in the change log: everything at or before it has been delivered."""

    xid: int
    seq: int


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def record_change(
    session: Session,
    entity: str,
    entity_id: str,
    *,
    grid_code: str | None,
    prev_grid_code: str | None = None,
    owner_user_id: int | None = None,
) -> None:
    xid = _PG_XID if _is_pg(session) else literal(0)
    session.execute(
        insert(ChangeLogEntry).values(
            xid=xid,
            entity=entity,
            entity_id=entity_id,
            grid_code=grid_code,
            prev_grid_code=prev_grid_code,
            owner_user_id=owner_user_id,
        )
    )


def visibility_limit(session: Session) -> int:
    """Entries from transactions with an id at or above this may still be in flight."""
    if _is_pg(session):
        return int(session.execute(select(_PG_VISIBLE_BELOW)).scalar_one())
    return NO_LIMIT


def head(session: Session, *, below: int | None = None, oldest: Position | None = None) -> Position:
    """Where a device that has just read the current state should continue the feed from.

    Everything from a transaction below the visibility limit is in what it read; anything
    else may not be and will be delivered (again) by the feed. ``below`` and ``oldest``: the
    visibility limit and horizon if the caller read them in this snapshot already.
    """
    if _is_pg(session):
        limit = visibility_limit(session) if below is None else below
        position = Position(limit - 1, NO_LIMIT)
    else:
        last = session.scalar(
            select(ChangeLogEntry.seq).order_by(ChangeLogEntry.seq.desc()).limit(1)
        )
        position = Position(0, int(last or 0))
    # Never behind the pruning horizon (an emptied log has no "last" entry to go by).
    return max(position, horizon(session) if oldest is None else oldest)


def _scope_filter(grid_codes: Sequence[str], user_id: int) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [ChangeLogEntry.owner_user_id == user_id]
    if grid_codes:
        conditions.append(ChangeLogEntry.grid_code.in_(grid_codes))
        conditions.append(ChangeLogEntry.prev_grid_code.in_(grid_codes))
    return or_(*conditions)


def read_after(
    session: Session,
    after: Position,
    grid_codes: Sequence[str],
    user_id: int,
    limit: int,
    below_xid: int,
) -> list[ChangeLogEntry]:
    """Entries in scope after ``after``, oldest first, from transactions below ``below_xid``."""
    query = (
        select(ChangeLogEntry)
        .where(
            tuple_(ChangeLogEntry.xid, ChangeLogEntry.seq) > tuple_(after.xid, after.seq),
            ChangeLogEntry.xid < below_xid,
            _scope_filter(grid_codes, user_id),
        )
        .order_by(ChangeLogEntry.xid, ChangeLogEntry.seq)
        .limit(limit)
    )
    return list(session.scalars(query).all())


def has_withheld(
    session: Session, after: Position, grid_codes: Sequence[str], user_id: int, below_xid: int
) -> bool:
    """Are there entries in scope that a later pull will deliver (in-flight transactions)?"""
    return bool(
        session.scalar(
            select(
                exists().where(
                    tuple_(ChangeLogEntry.xid, ChangeLogEntry.seq) > tuple_(after.xid, after.seq),
                    ChangeLogEntry.xid >= below_xid,
                    _scope_filter(grid_codes, user_id),
                )
            )
        )
    )


def horizon(session: Session) -> Position:
    """The oldest position still answerable; older cursors must reset."""
    row = session.scalar(select(SyncHorizon).order_by(SyncHorizon.id.desc()).limit(1))
    return Position(0, 0) if row is None else Position(row.xid, row.seq)
