"""Reports (上报): an inspector's record of a violation, created offline on a phone."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import shapely
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base
from backend.core.geometry import GeometryColumn
from backend.core.types import UTCDateTime, utcnow


class ReportStatus(StrEnum):
    """Owned by the command centre; phones can never change it."""

    submitted = "submitted"
    accepted = "accepted"
    declined = "declined"  # 不予立案
    merged = "merged"  # duplicate of another report
    closed = "closed"


# Final: no more changes from phones at all (no photos either).
LOCKED_STATUSES = frozenset({ReportStatus.declined, ReportStatus.merged, ReportStatus.closed})
# Once intake accepted the case the report is evidence of a filed case: no edits or deletes
# from phones (photos may still be added, e.g. 整改后 pictures of an on-the-spot fix).
EDIT_LOCKED_STATUSES = LOCKED_STATUSES | {ReportStatus.accepted}
# Fields a phone may set; everything else is the server's.
CLIENT_FIELDS = ("category_code", "description", "address", "location")


class ReportPurpose(StrEnum):
    violation = "violation"  # a problem found on patrol: becomes a case
    handling = "handling"  # a department's 处理反馈 (after-photos) for a case's task
    verification = "verification"  # an inspector's 核查 of a fix, for a case's task


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # made on the phone
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    create_digest: Mapped[str] = mapped_column(String(64))  # sha256 of the create arguments
    category_code: Mapped[str] = mapped_column(String(6))
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(500))
    # The location exactly as the device reported it.
    loc_lon: Mapped[float] = mapped_column(Float)
    loc_lat: Mapped[float] = mapped_column(Float)
    loc_crs: Mapped[str] = mapped_column(String(10))
    loc_accuracy_m: Mapped[float] = mapped_column(Float)
    loc_fix_time: Mapped[datetime] = mapped_column(UTCDateTime)
    loc_provider: Mapped[str] = mapped_column(String(10))
    # Normalised to WGS-84 and matched by the server when the mutation was applied.
    geom: Mapped[shapely.Geometry] = mapped_column(GeometryColumn("POINT"))
    min_x: Mapped[float] = mapped_column(Float)
    min_y: Mapped[float] = mapped_column(Float)
    max_x: Mapped[float] = mapped_column(Float)
    max_y: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(String(40))
    grid_version_id: Mapped[int | None] = mapped_column(ForeignKey("grid_versions.id"))
    match_kind: Mapped[str | None] = mapped_column(String(10))
    match_distance_m: Mapped[float | None] = mapped_column(Float)
    match_candidates: Mapped[list[str]] = mapped_column(JSON)
    flags: Mapped[list[str]] = mapped_column(JSON)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)  # device clock: display only
    captured_offset_min: Mapped[int] = mapped_column(Integer)  # the device's UTC offset
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default=ReportStatus.submitted.value)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # field -> version that last changed it: what conflict detection compares base_version to.
    field_versions: Mapped[dict[str, int]] = mapped_column(JSON)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purpose: Mapped[str] = mapped_column(
        String(12), default=ReportPurpose.violation.value, server_default=text("'violation'")
    )
    # The case this report is evidence for (its own, or the one it was merged into).
    case_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(
            "status IN ('submitted', 'accepted', 'declined', 'merged', 'closed')", name="status"
        ),
        Index("ix_reports_reporter", "reporter_id"),
        Index("ix_reports_case", "case_id"),
        Index("ix_reports_grid", "grid_code"),
        Index("ix_reports_bbox", "min_x", "max_x", "min_y", "max_y"),
        Index("ix_reports_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )

    def snapshot(self) -> dict[str, Any]:
        """Current values of the fields a phone may edit (for conflict checks)."""
        return {
            "category_code": self.category_code,
            "description": self.description,
            "address": self.address,
            "location": self.location_dict(),
        }

    def location_dict(self) -> dict[str, Any]:
        return {
            "lon": self.loc_lon,
            "lat": self.loc_lat,
            "crs": self.loc_crs,
            "accuracy_m": self.loc_accuracy_m,
            "fix_time": self.loc_fix_time.isoformat().replace("+00:00", "Z"),
            "provider": self.loc_provider,
        }
