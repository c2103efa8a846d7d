"""Queries of the categories domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.categories.models import Category


def all_categories(session: Session, *, include_inactive: bool = False) -> Sequence[Category]:
    query = select(Category).order_by(Category.code)
    if not include_inactive:
        query = query.where(Category.active.is_(True))
    return session.scalars(query).all()


def by_code(session: Session, code: str) -> Category | None:
    return session.get(Category, code)


def for_update(session: Session) -> dict[str, Category]:
    """Every category, locked (an import replaces the set as one change)."""
    rows = session.scalars(select(Category).with_for_update()).all()
    return {row.code: row for row in rows}
