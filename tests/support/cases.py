"""Cases written straight through the ORM, and users with a unit or department, for tests of
what reads cases (the review list, export, tiles, duplicates) without going through intake.
Offsets are in metres, so tests say what they mean."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import shapely
from sqlalchemy.orm import Session

from backend.accounts import repository as accounts_repository
from backend.accounts import service as accounts
from backend.accounts.models import Role
from backend.cases.models import Case, Department
from backend.core.db import transaction
from backend.geo.metric import radii_of_curvature
from tests.support.apps import TEST_PASSWORD, ApiHarness

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Hangzhou
HERE = (120.1300, 30.2700)  # Xihu district, Hangzhou


def offset(
    north_m: float = 0.0, east_m: float = 0.0, origin: tuple[float, float] = HERE
) -> tuple[float, float]:
    """The (lon, lat) ``north_m``/``east_m`` metres from ``origin`` (local ellipsoidal radii:
    exact to well under a millimetre at these distances)."""
    lon, lat = origin
    m_radius, n_radius = radii_of_curvature(lat)
    dlat = math.degrees(north_m / m_radius)
    dlon = math.degrees(east_m / (n_radius * math.cos(math.radians(lat))))
    return lon + dlon, lat + dlat


def ensure_department(session: Session, code: str) -> None:
    if session.get(Department, code) is None:
        session.add(Department(code=code, name=f"部门 {code}", kind="enforcement"))
        session.flush()


def insert_case(
    session: Session,
    *,
    status: str = "reported",
    source: str = "inspector",
    category_code: str = "0504",
    description: str = "店外经营",
    address: str = "文三路 88 号",
    at: tuple[float, float] = HERE,
    grid_code: str | None = "330106001001001",
    department_code: str | None = None,
    reporter_id: int | None = None,
    flags: Sequence[str] = (),
    report_count: int = 1,
    created_at: datetime = T0,
    updated_at: datetime | None = None,
    step: str | None = None,
    step_deadline: datetime | None = None,
    version: int = 1,
) -> int:
    if department_code is not None:
        ensure_department(session, department_code)
    lon, lat = at
    case = Case(
        source=source,
        status=status,
        category_code=category_code,
        description=description,
        address=address,
        geom=shapely.Point(lon, lat),
        lon=lon,
        lat=lat,
        grid_code=grid_code,
        department_code=department_code,
        reporter_id=reporter_id,
        on_spot=False,
        report_count=report_count,
        flags=list(flags),
        rework_count=0,
        step=step,
        step_started_at=created_at if step else None,
        step_deadline=step_deadline,
        created_by="test",
        created_at=created_at,
        updated_at=updated_at or created_at,
        version=version,
    )
    session.add(case)
    session.flush()
    return case.id


def seed_cases(api: ApiHarness, *rows: dict[str, Any]) -> list[int]:
    """One transaction inserting a case per entry (keyword arguments of insert_case)."""
    with transaction(api.runtime.sessions) as session:
        return [insert_case(session, **row) for row in rows]


def user_id(api: ApiHarness, username: str) -> int:
    with transaction(api.runtime.read_sessions) as session:
        user = accounts_repository.by_username(session, username)
        assert user is not None, username
        return user.id


def headers_for(
    api: ApiHarness,
    username: str,
    role: Role,
    *,
    unit: str | None = None,
    department: str | None = None,
) -> dict[str, str]:
    """A user with that role, org unit and department (created once), logged in."""
    with transaction(api.runtime.sessions) as session:
        user = accounts_repository.by_username(session, username)
        if user is None:
            user = accounts.create_user(
                session, username=username, password=TEST_PASSWORD, role=role, unit_code=unit
            )
        if department is not None:
            ensure_department(session, department)
            user.department_code = department
    return api.token_for(username)
