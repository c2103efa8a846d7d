"""Bookkeeping of the sync protocol: processed mutations, the change log, scope snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base
from backend.core.types import UTCDateTime, utcnow


class ProcessedMutation(Base):
    """The stored result of each processed mutation, returned unchanged on replay."""

    __tablename__ = "sync_mutations"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    mutation_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The record version this mutation produced: edits of one device never conflict with the
    # device's own earlier edits (two offline edits of a field carry the same base_version).
    record_id: Mapped[str | None] = mapped_column(String(40))
    record_version: Mapped[int | None] = mapped_column(Integer)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_sync_mutations_record", "device_id", "record_id"),)


class ChangeLogEntry(Base):
    """One row per "record X changed"; pulls read them in (xid, seq) order (sync-protocol §5).

    ``xid`` is the writing transaction's id on PostgreSQL (0 on SQLite, where writers are
    serialised). ``grid_code``/``prev_grid_code``/``owner_user_id`` are the scope keys that
    decide which devices see the entry; what is delivered is the record's current state.
    """

    __tablename__ = "sync_changes"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    xid: Mapped[int] = mapped_column(BigInteger)
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(40))
    grid_code: Mapped[str | None] = mapped_column(String(40))
    prev_grid_code: Mapped[str | None] = mapped_column(String(40))
    owner_user_id: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_sync_changes_position", "xid", "seq"),
        Index("ix_sync_changes_grid", "grid_code"),
        Index("ix_sync_changes_owner", "owner_user_id"),
        Index("ix_sync_changes_prev_grid", "prev_grid_code"),
        # Without AUTOINCREMENT SQLite reuses the highest rowid after deletes: a pruned log
        # would hand out positions behind existing cursors.
        {"sqlite_autoincrement": True},
    )


class ScopeSnapshot(Base):
    """A device scope (assigned grids + grid version) by hash, so a cursor can name it."""

    __tablename__ = "sync_scopes"

    scope_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grid_version_id: Mapped[int | None] = mapped_column(Integer)
    grid_activation_seq: Mapped[int] = mapped_column(Integer)
    grid_codes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncHorizon(Base):
    """The oldest change-log position still kept; cursors before it get a reset."""

    __tablename__ = "sync_horizon"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    xid: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    pruned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
