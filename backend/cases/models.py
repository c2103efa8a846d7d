"""Cases (案卷): what the command centre files from reports and other sources, and tracks to
closure (GB/T 30428 flow; the transitions live in backend.cases.lifecycle)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import shapely
from sqlalchemy import (
    JSON,
    Boolean,
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


class CaseStatus(StrEnum):
    reported = "reported"  # 上报, waiting for intake
    accepted = "accepted"  # 受理: intake confirmed it is real
    filed = "filed"  # 立案
    declined = "declined"  # 不予立案 (with a reason)
    voided = "voided"  # 作废: a duplicate merged into another case
    dispatched = "dispatched"  # 派遣: with a responsible department
    handled = "handled"  # 处理反馈: the department says it is fixed; verification task out
    verified = "verified"  # 核查 done by an inspector, waiting for the coordinator
    closed = "closed"  # 结案


FINAL_STATUSES = frozenset({CaseStatus.declined, CaseStatus.voided, CaseStatus.closed})


class CaseSource(StrEnum):
    inspector = "inspector"  # 监督员上报 (through sync)
    hotline_12345 = "hotline_12345"  # 12345 政务服务热线
    hotline_12319 = "hotline_12319"  # 12319 城建服务热线
    complaint = "complaint"  # 群众投诉
    video_patrol = "video_patrol"  # 视频巡查
    leader_assigned = "leader_assigned"  # 领导督办/交办
    third_party = "third_party"  # 第三方巡查


class Step(StrEnum):
    """The timed steps (their limits come from the category, counted in working time)."""

    accept = "accept"  # reported → filed / declined / voided (受理立案)
    dispatch = "dispatch"  # filed → dispatched (派遣)
    handle = "handle"  # dispatched → handled (处置)
    check = "check"  # handled → verified (核查)


class Department(Base):
    """A responsible unit (处置部门): enforcement squad, sanitation, street office, ..."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    # The org unit it serves (district/street/community code), None = city-wide.
    unit_code: Mapped[str | None] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str | None] = mapped_column(String(64))  # e.g. the hotline ticket no.
    status: Mapped[str] = mapped_column(String(12))
    category_code: Mapped[str] = mapped_column(String(6))
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(500))
    geom: Mapped[shapely.Geometry] = mapped_column(GeometryColumn("POINT"))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(String(40))
    on_spot: Mapped[bool] = mapped_column(Boolean, default=False)  # 当场整改 claimed
    primary_report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)  # evidence flags, reports'
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    decline_reason: Mapped[str | None] = mapped_column(Text)
    # The step being timed now (None once final) and its working-time deadline.
    step: Mapped[str | None] = mapped_column(String(10))
    step_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    step_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        CheckConstraint(
            "status IN ('reported', 'accepted', 'filed', 'declined', 'voided', 'dispatched', "
            "'handled', 'verified', 'closed')",
            name="status",
        ),
        Index("ix_cases_status_created", "status", "created_at"),
        Index("ix_cases_created", "created_at", "id"),  # the review list's default order
        Index("ix_cases_grid", "grid_code"),
        Index("ix_cases_category", "category_code"),
        Index("ix_cases_department", "department_code", "status"),
        Index("ix_cases_deadline", "step_deadline"),
        Index("ix_cases_lon_lat", "lon", "lat"),
        Index("ix_cases_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )


class CaseEvent(Base):
    """The timeline: one row per transition or review action (also in the audit chain)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    comment: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_case_events_case", "case_id", "id"),)


class CaseStep(Base):
    """One timed step of one case, kept for assessment (按时立案率, 按期处置率, ...)."""

    __tablename__ = "case_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    step: Mapped[str] = mapped_column(String(10))
    round: Mapped[int] = mapped_column(Integer, default=1)  # 1 + reworks before it began
    department_code: Mapped[str | None] = mapped_column(String(40))
    limit_minutes: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_by: Mapped[str | None] = mapped_column(String(64))
    working_minutes: Mapped[float | None] = mapped_column(Float)
    overdue: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (Index("ix_case_steps_case", "case_id", "id"),)


class TaskKind(StrEnum):
    handle = "handle"  # 处置: for a department's handlers
    verify = "verify"  # 核查: for an inspector responsible for the grid


class TaskStatus(StrEnum):
    open = "open"
    done = "done"
    cancelled = "cancelled"


class Task(Base):
    """Work for a phone: delivered by sync pull, completed by a ``task.complete`` mutation."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default=TaskStatus.open.value)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(12))
    result_report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ix_tasks_assignee", "assignee_id", "status"),
        Index("ix_tasks_department", "department_code", "status"),
        Index("ix_tasks_case", "case_id"),
    )
