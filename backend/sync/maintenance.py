"""Change-log retention: old entries are pruned; cursors from before the horizon reset."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.core.types import utcnow
from backend.sync.changelog import Position, horizon
from backend.sync.models import ChangeLogEntry, SyncHorizon


def prune_change_log(session: Session, older_than_days: int, now: datetime | None = None) -> int:
    """Delete entries older than the retention; devices behind them get a reset, not a gap."""
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    newest_old = session.execute(
        select(ChangeLogEntry.xid, ChangeLogEntry.seq)
        .where(ChangeLogEntry.changed_at < cutoff)
        .order_by(ChangeLogEntry.xid.desc(), ChangeLogEntry.seq.desc())
        .limit(1)
    ).first()
    if newest_old is None:
        return 0
    position = max(Position(int(newest_old[0]), int(newest_old[1])), horizon(session))
    count = int(
        session.scalar(
            select(func.count())
            .select_from(ChangeLogEntry)
            .where(ChangeLogEntry.changed_at < cutoff)
        )
        or 0
    )
    session.execute(delete(ChangeLogEntry).where(ChangeLogEntry.changed_at < cutoff))
    session.add(SyncHorizon(xid=position.xid, seq=position.seq))
    session.flush()
    return count
