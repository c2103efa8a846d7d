"""API shapes of the categories domain."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.categories.models import Category
from backend.categories.taxonomy import duplicate_rule


class DuplicateSettingsOut(BaseModel):
    """Which open cases are suggested as duplicates of a new one (docs/duplicates.md)."""

    radius_m: float = Field(description="Metres from the case's point", examples=[50])
    window_minutes: int = Field(
        description="Calendar minutes before or after the case was created", examples=[10080]
    )

    @classmethod
    def of(cls, row: Category) -> DuplicateSettingsOut:
        radius_m, window_minutes = duplicate_rule(row.dup_radius_m, row.dup_window_minutes)
        return cls(radius_m=radius_m, window_minutes=window_minutes)


class CategoryOut(BaseModel):
    code: str = Field(examples=["0504"])
    key: str = Field(examples=["shop_front_trading"])
    name: str = Field(examples=["店外经营"])
    description: str
    parent_code: str | None
    measure: str = Field(description="count, m2, m or truckload")
    limits: dict[str, str] = Field(
        description="Working time per step (accept, dispatch, handle, check): 30m, 4h, 7d"
    )
    duplicates: DuplicateSettingsOut = Field(
        description="In force: the category's own or inherited values, else 50 m and 7 days"
    )
    active: bool

    @classmethod
    def of(cls, row: Category) -> CategoryOut:
        return cls(
            code=row.code,
            key=row.key,
            name=row.name,
            description=row.description or "",
            parent_code=row.parent_code,
            measure=row.measure,
            limits=dict(row.limits or {}),
            duplicates=DuplicateSettingsOut.of(row),
            active=row.active,
        )


class CategoryNode(CategoryOut):
    children: list[CategoryNode] = Field(default_factory=list)


class CategoryTree(BaseModel):
    items: list[CategoryNode]


class CategoryImportOut(BaseModel):
    created: list[str]
    updated: list[str]
    deactivated: list[str]
    unchanged: int
    dry_run: bool
