"""Accounts: the people who use Xuncha, with one role each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base
from backend.core.types import UTCDateTime, utcnow


class Role(StrEnum):
    inspector = "inspector"  # 巡查员 / 监督员 / 网格员
    intake_operator = "intake_operator"  # 受理员
    shift_lead = "shift_lead"  # 值班长
    dispatcher = "dispatcher"  # 派遣员
    department_handler = "department_handler"  # 处置部门
    admin = "admin"


ROLE_LABELS = {
    Role.inspector: "巡查员",
    Role.intake_operator: "受理员",
    Role.shift_lead: "值班长",
    Role.dispatcher: "派遣员",
    Role.department_handler: "处置部门",
    Role.admin: "管理员",
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Bumped to revoke every token issued before; checked on each authenticated request.
    token_version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # Org unit (district 6 / street 9 / community 12 digits of the grid code): the part of
    # the city a command-centre user works on; None = city-wide (backend.accounts.scope).
    unit_code: Mapped[str | None] = mapped_column(String(12))
    # A department handler's responsible unit (处置部门): what is dispatched to it is theirs.
    department_code: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "role IN ('inspector', 'intake_operator', 'shift_lead', 'dispatcher', "
            "'department_handler', 'admin')",
            name="role",
        ),
    )


class AuthFailure(Base):
    """One failed attempt at a door that takes a secret (login, enrollment code, device
    secret), counted in one bucket: a username or a client address (backend.accounts.throttle).

    ``bucket`` is a SHA-256 of the bucket's name, so the table never holds what someone typed
    into the username field (sometimes their password) or a client address in clear.
    """

    __tablename__ = "auth_failures"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    bucket: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_auth_failures_bucket_at", "bucket", "at"),
        Index("ix_auth_failures_at", "at"),
    )
