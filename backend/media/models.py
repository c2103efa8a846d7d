"""Photos (the evidence) and their resumable uploads.

A photo is declared by the report that carries it (sha256, size, type, from the phone); its
bytes arrive later by upload, are verified against the declaration, and are kept unaltered.
The table keeps its historical name ``report_photos``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base
from backend.core.types import UTCDateTime, utcnow


class PhotoState(StrEnum):
    declared = "declared"  # named by a report; bytes not received yet
    stored = "stored"  # bytes received, verified against the declaration, kept unaltered


class PhotoRole(StrEnum):
    before = "before"  # 整改前: the violation as found
    after = "after"  # 整改后: after the fix


class Photo(Base):
    __tablename__ = "report_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    photo_id: Mapped[str] = mapped_column(String(36))
    position: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(
        String(10), default=PhotoRole.before.value, server_default=text("'before'")
    )
    state: Mapped[str] = mapped_column(
        String(10), default=PhotoState.declared.value, server_default=text("'declared'")
    )
    object_key: Mapped[str | None] = mapped_column(String(200))
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uploaded_via: Mapped[str | None] = mapped_column(String(10))  # tus | direct
    detected_type: Mapped[str | None] = mapped_column(String(20))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    exif: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # distances, times, pairs
    # 64-bit perceptual hash (signed, as the database stores it) and its four 16-bit bands,
    # indexed: two near-duplicates (Hamming <= 3) share at least one band.
    phash: Mapped[int | None] = mapped_column(BigInteger)
    phash_b0: Mapped[int | None] = mapped_column(Integer)
    phash_b1: Mapped[int | None] = mapped_column(Integer)
    phash_b2: Mapped[int | None] = mapped_column(Integer)
    phash_b3: Mapped[int | None] = mapped_column(Integer)
    preview_key: Mapped[str | None] = mapped_column(String(200))
    thumbnail_key: Mapped[str | None] = mapped_column(String(200))
    renditions_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    distance_m: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("photo_id"),
        Index("ix_report_photos_report", "report_id"),
        Index("ix_report_photos_sha256", "sha256"),
        Index("ix_report_photos_phash_b0", "phash_b0"),
        Index("ix_report_photos_phash_b1", "phash_b1"),
        Index("ix_report_photos_phash_b2", "phash_b2"),
        Index("ix_report_photos_phash_b3", "phash_b3"),
    )


class UploadKind(StrEnum):
    tus = "tus"  # resumable, through our API; chunks kept as objects until the last arrives
    direct = "direct"  # presigned PUT to a staging object, then "complete"


class PhotoUpload(Base):
    """An upload in progress: expires, and is cleaned up, if never completed."""

    __tablename__ = "photo_uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default=UploadKind.tus.value)
    photo_id: Mapped[str] = mapped_column(String(36), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    # The object keys of the accepted chunks, in order. Keys carry a random part, so a chunk
    # written by a PATCH that then lost the race (or crashed) never blocks the retry.
    parts: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_photo_uploads_expires", "expires_at"),)
