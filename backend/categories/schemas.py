"""API shapes of the categories domain."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.categories.models import Category


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
