"""The load test's world: a 500-grid district, 500 inspectors with enrolled phones (one grid
each), 10 command-centre users, a department, and cases already handled so that
verification tasks wait on the inspectors' phones. Written straight through the services
(the load test measures the shift change, not the setup)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import shapely
from sqlalchemy.orm import Session

from backend.accounts import security
from backend.accounts.models import Role, User
from backend.cases import departments
from backend.cases import repository as case_repository
from backend.cases import service as cases
from backend.cases.models import CaseSource
from backend.categories import service as categories
from backend.core.db import transaction
from backend.core.runtime import Runtime
from backend.devices import service as devices
from backend.grids import repository as grids
from backend.grids.models import AssigneeKind, GridAssignment
from backend.reports import service as reports
from backend.reports.service import LocationInput, Locator, NewReport, PhotoInput
from tests.support.grids import lattice_grids, store_version

ORIGIN = (120.10, 30.25)
PASSWORD = "load-test-password"
DEPARTMENT = "zfzd-load"


@dataclass(frozen=True)
class SeedSpec:
    inspectors: int = 500
    coordinators: int = 10
    handled_cases: int = 150  # each leaves a verification task on an inspector's phone


def seed(runtime: Runtime, spec: SeedSpec) -> dict[str, Any]:
    cols = 25
    rows = math.ceil(spec.inspectors / cols)
    codes, geoms = lattice_grids(cols, rows, origin=ORIGIN)
    password_hash = security.hash_password(PASSWORD)  # once: argon2 is slow on purpose
    with transaction(runtime.sessions) as session:
        # The city's taxonomy: reports name its codes (time limits, duplicate rules).
        categories.import_categories(session, categories.default_file(), actor="load")
        version_id = store_version(session, codes, geoms)
        grids.set_active(session, version_id, datetime.now(UTC))
        inspectors = _users(session, "inspector", Role.inspector, spec.inspectors, password_hash)
        for user, code in zip(inspectors, codes, strict=False):
            session.add(
                GridAssignment(
                    grid_code=code, kind=AssigneeKind.person.value, role="网格员",
                    assignee_name=user.display_name, assignee_ref=user.username,
                    effective_from=datetime(2026, 1, 1).date(), created_by="load",
                )
            )  # fmt: skip
        roles = [Role.intake_operator, Role.dispatcher, Role.shift_lead]
        coordinators = [
            _users(session, f"centre{i}-", roles[i % 3], 1, password_hash)[0]
            for i in range(spec.coordinators)
        ]
        departments.upsert(
            session, code=DEPARTMENT, name="执法中队（压测）", kind="enforcement",
            unit_code=None, active=True, actor="load",
        )  # fmt: skip
        handler = _users(session, "handler", Role.department_handler, 1, password_hash)[0]
        handler.department_code = DEPARTMENT
        session.flush()
        phones = [_enroll(session, runtime, user, geoms[i]) for i, user in enumerate(inspectors)]
        handler_phone = _enroll(session, runtime, handler, geoms[0])
    _handled_cases(runtime, spec.handled_cases, codes, geoms, handler_phone)
    return {
        "phones": phones,
        "coordinators": [{"username": u.username, "password": PASSWORD} for u in coordinators],
        "tiles": _tiles(geoms),
        "grids": len(codes),
    }


def _users(session: Session, prefix: str, role: Role, count: int, password_hash: str) -> list[User]:
    users = [
        User(
            username=f"{prefix}{i:03d}", display_name=f"{prefix}{i:03d}", role=role.value,
            password_hash=password_hash, is_active=True, token_version=1,
        )
        for i in range(count)
    ]  # fmt: skip
    session.add_all(users)
    session.flush()
    return users


def _enroll(session: Session, runtime: Runtime, user: User, grid: Any) -> dict[str, Any]:
    issued = devices.create_enrollment_code(
        session, runtime.settings, user.id, "load", "http://load.invalid"
    )
    enrolled = devices.enroll(
        session, runtime.settings, issued.code, f"phone of {user.username}", "android", "1.4.2"
    )
    centre = grid.centroid
    return {
        "device_id": enrolled.device.id,
        "secret": enrolled.device_secret,
        "user_id": user.id,
        "username": user.username,
        "location": {
            "lon": round(centre.x, 7), "lat": round(centre.y, 7), "crs": "wgs84",
            "accuracy_m": 6.0, "fix_time": "2026-11-23T08:00:00+08:00", "provider": "gps",
        },
    }  # fmt: skip


def _handled_cases(
    runtime: Runtime, count: int, codes: list[str], geoms: list[Any], handler: dict[str, Any]
) -> None:
    """Hotline cases filed, dispatched and handled: each leaves a 核查 task on a phone."""
    with transaction(runtime.sessions) as session:
        admin = _users(session, "load-admin", Role.admin, 1, security.hash_password(PASSWORD))[0]
        handler_user = session.get(User, handler["user_id"])
        assert handler_user is not None
        locator = Locator(runtime.grid_indexes.active(session), 50.0)
        step = max(len(codes) // max(count, 1), 1)
        for i in range(count):
            point = geoms[(i * step) % len(geoms)].centroid
            case = cases.open_from_source(
                session, admin,
                cases.NewCase(CaseSource.hotline_12345, None, "0504", "来电：店外经营", "",
                              point.x, point.y, codes[(i * step) % len(codes)]),
            )  # fmt: skip
            cases.act(session, admin, case.id, "file", cases.ActionInput())
            cases.act(session, admin, case.id, "dispatch",
                      cases.ActionInput(department_code=DEPARTMENT))  # fmt: skip
            task = case_repository.open_tasks(session, case.id)[0]
            evidence = reports.create(
                session, user_id=handler_user.id, device_id=handler["device_id"],
                new=_evidence(i, point), locator=locator,
            )  # fmt: skip
            cases.complete_task(session, handler_user, task.id, "done", "", evidence.report)


def _evidence(i: int, point: shapely.Point) -> NewReport:
    fix = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    return NewReport(
        report_id=f"00000000-0000-4000-8000-{i:012d}",
        category_code="0504", description="已整改", address="",
        location=LocationInput(point.x, point.y, "wgs84", 5.0, fix, "gps"),
        captured_at=fix,
        photos=(PhotoInput(f"00000000-0000-4000-9000-{i:012d}", "0" * 64, 1000, "image/jpeg"),),
        digest="0" * 64, photo_role="after",
    )  # fmt: skip


def _tiles(geoms: list[Any]) -> list[tuple[int, int, int]]:
    """z14 and z16 tiles over the district, for the coordinators' map."""
    minx, miny, maxx, maxy = shapely.GeometryCollection(geoms).bounds
    tiles = []
    for z in (14, 16):
        n = 2**z
        x0, x1 = int((minx + 180) / 360 * n), int((maxx + 180) / 360 * n)
        y0 = int((1 - math.asinh(math.tan(math.radians(maxy))) / math.pi) / 2 * n)
        y1 = int((1 - math.asinh(math.tan(math.radians(miny))) / math.pi) / 2 * n)
        tiles += [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    return tiles
