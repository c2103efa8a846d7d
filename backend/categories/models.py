"""The city's violation categories (事件分类), imported from a file (see taxonomy)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base
from backend.core.types import UTCDateTime, utcnow


class Category(Base):
    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    parent_code: Mapped[str | None] = mapped_column(String(6))
    measure: Mapped[str] = mapped_column(String(12))
    limits: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Duplicate suggestions, resolved with inheritance at import; NULL = the defaults
    # (taxonomy.DEFAULT_DUP_*), kept NULL so an export does not freeze today's defaults.
    dup_radius_m: Mapped[float | None] = mapped_column(Float)
    dup_window_minutes: Mapped[int | None] = mapped_column(Integer)
    # A category dropped from a later file is kept inactive: reports and cases still name it.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_categories_parent", "parent_code"),)
