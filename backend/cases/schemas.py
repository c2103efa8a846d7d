"""Bodies of the cases API (the command centre's and departments' view; phones use sync)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from backend.cases.models import CaseSource
from backend.core.params import DB_ID_MAX
from backend.core.schemas import InputModel, NonBlankText

DEPARTMENT_KINDS = (
    "enforcement",  # 执法中队
    "sanitation",  # 环卫
    "market",  # 市场监管
    "housing",  # 住建
    "street_office",  # 街道
    "community",  # 社区
    "contractor",  # 保洁公司等
    "utility",  # 部件权属单位 (井盖, 路灯 ...)
    "other",
)


class ActionIn(InputModel):
    comment: str = Field(
        default="",
        max_length=2000,
        description="Required for decline, return, redispatch and rework (the reason)",
    )
    expected_version: StrictInt | None = Field(
        default=None, ge=1, description="Refuse (409 case_changed) if the case moved on since"
    )
    department_code: str | None = Field(
        default=None, max_length=40, description="dispatch / redispatch: the responsible unit"
    )
    into_case_id: StrictInt | None = Field(
        default=None,
        ge=1,
        le=DB_ID_MAX,
        description="void: the case this one duplicates (its reports move)",
    )


class LocationIn(InputModel):
    lon: StrictFloat = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: StrictFloat = Field(ge=-90, le=90, allow_inf_nan=False)
    crs: str = Field(default="wgs84", description="wgs84, cgcs2000, gcj02 or bd09")


class CaseCreate(InputModel):
    source: CaseSource = Field(description="Not `inspector`: phones report through sync")
    source_ref: str | None = Field(default=None, max_length=64, examples=["12345-20261123-0042"])
    category_code: str = Field(pattern=r"^[0-9]{2,6}$", examples=["0504"])
    description: NonBlankText = Field(min_length=1, max_length=2000)
    address: str = Field(default="", max_length=500)
    location: LocationIn


class VerifierIn(InputModel):
    username: str = Field(min_length=1, max_length=64)
    comment: str = Field(default="", max_length=2000)


class CaseSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    source: str
    source_ref: str | None
    category_code: str
    description: str
    address: str
    lon: float
    lat: float
    grid_code: str | None
    department_code: str | None
    report_count: int
    flags: list[str]
    on_spot: bool
    rework_count: int
    step: str | None
    step_deadline: datetime | None
    overdue: bool
    merged_into_id: int | None
    decline_reason: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    from_status: str | None
    to_status: str
    actor: str
    actor_role: str
    at: datetime
    comment: str
    details: dict[str, Any]


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: str
    round: int
    department_code: str | None
    limit_minutes: int
    started_at: datetime
    deadline: datetime
    finished_at: datetime | None
    finished_by: str | None
    working_minutes: float | None = Field(description="Working time the step took")
    overdue: bool = Field(description="Finished late, or still running past its deadline")


class PhotoBrief(BaseModel):
    photo_id: str
    role: str
    state: str
    content_type: str
    width: int | None
    height: int | None
    flags: list[str]
    exif: dict[str, Any] | None
    evidence: dict[str, Any] | None
    links: dict[str, str] = Field(description="original/preview/thumbnail, valid ≤ 15 minutes")


class ReportBrief(BaseModel):
    id: str
    purpose: str
    status: str
    reporter_id: int
    captured_at: datetime
    received_at: datetime
    lon: float
    lat: float
    flags: list[str]
    photos: list[PhotoBrief]


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    status: str
    assignee_id: int | None
    department_code: str | None
    due_at: datetime | None
    outcome: str | None
    result_report_id: str | None


class CaseDetail(CaseSummary):
    allowed_actions: list[str] = Field(description="What the caller may do next")
    timeline: list[EventOut]
    steps: list[StepOut]
    tasks: list[TaskOut]
    reports: list[ReportBrief]
    grid_polygon: dict[str, Any] | None = Field(description="GeoJSON of the case's grid")
    nearby: list[CaseSummary] = Field(description="Open cases within 200 m, nearest first")


class CaseList(BaseModel):
    items: list[CaseSummary]


class DepartmentIn(InputModel):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,39}$", examples=["xh-zfzd-1"])
    name: NonBlankText = Field(min_length=1, max_length=100, examples=["西湖区城管执法一中队"])
    kind: str = Field(pattern="^(" + "|".join(DEPARTMENT_KINDS) + ")$")
    unit_code: str | None = Field(default=None, pattern=r"^[0-9]{6}(?:[0-9]{3}){0,2}$")
    active: StrictBool = True  # not 0/1 or "yes": a boolean, as documented


class DepartmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: str
    unit_code: str | None
    active: bool


class DepartmentList(BaseModel):
    items: list[DepartmentOut]


class UserDepartmentIn(InputModel):
    department_code: str | None = Field(max_length=40)
