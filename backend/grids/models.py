"""Tables of the grids domain: versioned grid sets, their cells, and responsibility history."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import shapely
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base
from backend.core.geometry import GeometryColumn
from backend.core.types import UTCDateTime, utcnow


class ZoneTier(StrEnum):
    """管控分区: how strictly an area is managed (严管区 / 控制区 / 一般区)."""

    strict = "strict"
    controlled = "controlled"
    general = "general"


ZONE_TIER_LABELS = {ZoneTier.strict: "严管", ZoneTier.controlled: "控制", ZoneTier.general: "一般"}


class AssigneeKind(StrEnum):
    person = "person"  # 网格员 / 监督员 / 巡查员
    unit = "unit"  # 责任单位


class GridVersion(Base):
    """One imported grid set. Exactly one version is active; matches record which they used."""

    __tablename__ = "grid_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    source_filename: Mapped[str] = mapped_column(String(300))
    source_format: Mapped[str] = mapped_column(String(20))
    source_crs: Mapped[str] = mapped_column(String(100))
    source_sha256: Mapped[str] = mapped_column(String(64))
    cell_count: Mapped[int] = mapped_column(Integer)
    total_area_m2: Mapped[float] = mapped_column(Float)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on every activation (1, 2, 3 ...), so re-activating an older version still moves
    # forward: phones compare grid records by this number (docs/sync-protocol.md §3).
    activation_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    __table_args__ = (
        # At most one active version, enforced by the database on both dialects.
        Index(
            "uq_grid_versions_one_active",
            "is_active",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
    )


class GridCell(Base):
    """A unit grid (单元网格) as it exists in one version."""

    __tablename__ = "grid_cells"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("grid_versions.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    district_code: Mapped[str] = mapped_column(String(40))
    street_code: Mapped[str] = mapped_column(String(40))
    community_code: Mapped[str] = mapped_column(String(40))
    district_name: Mapped[str | None] = mapped_column(String(200))
    street_name: Mapped[str | None] = mapped_column(String(200))
    community_name: Mapped[str | None] = mapped_column(String(200))
    zone_tier: Mapped[str | None] = mapped_column(String(20))
    area_m2: Mapped[float] = mapped_column(Float)
    geom: Mapped[shapely.Geometry] = mapped_column(GeometryColumn("MULTIPOLYGON"))
    # Bounding box: the spatial index on SQLite, a cheap prefilter everywhere.
    min_x: Mapped[float] = mapped_column(Float)
    min_y: Mapped[float] = mapped_column(Float)
    max_x: Mapped[float] = mapped_column(Float)
    max_y: Mapped[float] = mapped_column(Float)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("version_id", "code"),
        CheckConstraint(
            "zone_tier IS NULL OR zone_tier IN ('strict', 'controlled', 'general')",
            name="zone_tier",
        ),
        Index("ix_grid_cells_version_community", "version_id", "community_code"),
        Index("ix_grid_cells_version_street", "version_id", "street_code"),
        Index("ix_grid_cells_version_district", "version_id", "district_code"),
        Index("ix_grid_cells_version_bbox", "version_id", "min_x", "max_x", "min_y", "max_y"),
        Index("ix_grid_cells_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )


class GridAssignment(Base):
    """Who is responsible for a grid and when (定人、定岗、定责); rows are never deleted.

    Keyed by grid code, not cell id: responsibility outlives re-imports of the grid set.
    The effective period is half-open: ``effective_from <= day < effective_to``.
    """

    __tablename__ = "grid_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    role: Mapped[str] = mapped_column(String(50))
    assignee_name: Mapped[str] = mapped_column(String(200))
    assignee_ref: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        CheckConstraint("kind IN ('person', 'unit')", name="kind"),
        CheckConstraint("effective_to IS NULL OR effective_to > effective_from", name="period"),
        Index("ix_grid_assignments_code_from", "grid_code", "effective_from"),
        Index("ix_grid_assignments_ref", "assignee_ref"),
    )
