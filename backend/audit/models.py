"""The append-only audit log and its head (the last sequence number and hash)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base
from backend.core.types import UTCDateTime


class _Recorded:
    """What ``audit.record`` was told: the same columns parked and chained."""

    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEntry(_Recorded, Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id"),)


class AuditHead(Base):
    """One row: appending locks it, so entries are numbered and chained one at a time."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


class AuditInbox(_Recorded, Base):
    """Entries committed while another transaction held the head: the next one to get the
    head (a request committing, the worker's sweep, ``xuncha audit verify``) chains them.

    Ids order them only roughly (a lower id may commit later); the chain's order is the
    order they are chained in, and each keeps the time it was recorded.
    """

    __tablename__ = "audit_inbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
