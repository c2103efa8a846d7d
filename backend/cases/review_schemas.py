"""Response shapes of the coordinators' case list (the export and tiles are not JSON models)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from backend.cases.models import CaseStatus


class CaseListItem(BaseModel):
    id: int
    status: CaseStatus
    source: str = Field(description="inspector, hotline_12345, hotline_12319, complaint, …")
    category_code: str
    description: str
    address: str
    lon: float = Field(description="WGS-84")
    lat: float = Field(description="WGS-84")
    grid_code: str | None
    department_code: str | None
    report_count: int
    flags: list[str] = Field(description="Evidence flags of the case's reports")
    step: str | None = Field(description="The timed step now running; null once final")
    step_deadline: datetime | None
    overdue: bool = Field(description="A step is running and its deadline has passed")
    created_at: datetime
    updated_at: datetime
    version: int


class CaseListPage(BaseModel):
    items: list[CaseListItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters and sort) for the next page; "
        "null on the last page"
    )
