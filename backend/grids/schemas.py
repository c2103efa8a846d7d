"""Request and response bodies of the grids API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.core.params import DateText
from backend.core.schemas import InputModel
from backend.geo.crs import LocationCRS
from backend.grids.matcher import MatchKind
from backend.grids.models import AssigneeKind, ZoneTier


class GridVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    label: str
    source_filename: str
    source_format: str
    source_crs: str
    cell_count: int
    total_area_m2: float
    is_active: bool
    created_at: datetime
    created_by: str | None
    activated_at: datetime | None


class GridVersionDetail(GridVersionOut):
    report: dict[str, Any] = Field(
        description="Import report: invalid polygons, overlaps and gaps with areas, counts"
    )


class GridVersionList(BaseModel):
    items: list[GridVersionOut]


class GridOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str = Field(examples=["31010100100207"])
    name: str
    version_id: int
    district_code: str
    street_code: str
    community_code: str
    district_name: str | None
    street_name: str | None
    community_name: str | None
    zone_tier: ZoneTier | None
    area_m2: float
    bbox: list[float] = Field(description="[min_lon, min_lat, max_lon, max_lat]")
    geometry: dict[str, Any] | None = Field(
        default=None, description="GeoJSON MultiPolygon (WGS-84), when requested"
    )


class GridPage(BaseModel):
    items: list[GridOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end. A page may hold "
        "fewer items than `limit` even when more follow."
    )


class LocationIn(InputModel):
    """A location as a device reports it: coordinates in its map's system, with accuracy."""

    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, examples=[121.4737])
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, examples=[31.2304])
    crs: LocationCRS = Field(
        description="wgs84 (GNSS, Android/iOS location APIs), gcj02 (AMap, Tencent, Apple "
        "Maps in China), bd09 (Baidu), cgcs2000"
    )
    accuracy_m: float | None = Field(
        default=None, ge=0, le=100_000, allow_inf_nan=False, description="Horizontal accuracy"
    )


class GridMatchOut(BaseModel):
    grid_version_id: int
    kind: MatchKind = Field(description="inside | edge | nearest (within tolerance) | outside")
    grid_code: str | None
    candidates: list[str] = Field(description="Every grid covering the point, by code")
    distance_m: float | None = Field(description="0 when covered; metres to the nearest grid")
    lon: float = Field(description="WGS-84 longitude after normalisation")
    lat: float = Field(description="WGS-84 latitude after normalisation")
    source_crs: LocationCRS
    accuracy_m: float | None
    flags: list[str]
    grid: GridOut | None = None


class AssignmentIn(InputModel):
    kind: AssigneeKind = Field(description="person (网格员/监督员) or unit (责任单位)")
    role: str = Field(min_length=1, max_length=50, examples=["网格员"])
    assignee_name: str = Field(min_length=1, max_length=200, examples=["张伟"])
    assignee_ref: str | None = Field(
        default=None, max_length=100, description="User id or unit code, when known"
    )
    phone: str | None = Field(default=None, max_length=40, pattern=r"^[0-9+\- ]{3,40}$")
    note: str | None = Field(default=None, max_length=2000)
    effective_from: DateText
    effective_to: DateText | None = Field(default=None, description="Exclusive end date")

    @field_validator("role", "assignee_name")
    @classmethod
    def _strip(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("must not be blank")
        return stripped


class AssignmentEnd(InputModel):
    effective_to: DateText = Field(description="First day the assignment no longer applies")


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    grid_code: str
    kind: AssigneeKind
    role: str
    assignee_name: str
    assignee_ref: str | None
    phone: str | None
    note: str | None
    effective_from: date
    effective_to: date | None
    created_at: datetime
    created_by: str | None
    ended_at: datetime | None
    ended_by: str | None


class AssignmentList(BaseModel):
    items: list[AssignmentOut]
