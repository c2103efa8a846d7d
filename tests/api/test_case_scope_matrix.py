"""Scope of cases, proven as a matrix on both profiles: every case endpoint × every role ×
inside/outside its unit, department or reporter. No read shows an out-of-scope case and no
write gets through: an allowed write is stopped only by a stale `expected_version` (409
case_changed), so the matrix probes every action without changing the case."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from sqlalchemy import update

from backend.accounts.models import Role
from backend.cases.lifecycle import ACTIONS
from backend.cases.models import Case
from backend.core.db import transaction
from tests.support.apps import ApiHarness
from tests.support.case_flow import DEPARTMENT, OTHER_DEPARTMENT, CaseCity, case_city

INSIDE, OTHER = "330106001001", "330106001003"  # grid 0 lies in the first community
STALE = 10**6


@pytest.fixture
def flow(api: ApiHarness, tmp_path: Path) -> CaseCity:
    return case_city(api, tmp_path)


def _viewers(flow: CaseCity) -> list[tuple[str, Role, bool]]:
    """(user, role, may see the case) — creating the users on the way."""
    rows: list[tuple[str, Role, bool]] = [("zhangwei", Role.inspector, True)]  # the reporter
    rows.append(("lina", Role.inspector, False))  # another grid
    for role in (Role.intake_operator, Role.shift_lead, Role.dispatcher):
        for unit, sees in ((INSIDE, True), (INSIDE[:9], True), (OTHER, False), (None, True)):
            name = f"{role.value}-{unit or 'city'}"
            flow.user(name, role, unit=unit)
            rows.append((name, role, sees))
    flow.user("dept-own", Role.department_handler, department=DEPARTMENT)
    flow.user("dept-other", Role.department_handler, department=OTHER_DEPARTMENT)
    flow.user("dept-none", Role.department_handler)
    rows += [
        ("dept-own", Role.department_handler, True),
        ("dept-other", Role.department_handler, False),
        ("dept-none", Role.department_handler, False),
    ]
    flow.headers["chief"] = flow.city.admin
    rows.append(("chief", Role.admin, True))
    return rows


def test_every_case_endpoint_respects_scope(flow: CaseCity) -> None:
    report_id, case_id = flow.report("zhangwei", grid=0)
    flow.ok("intake", case_id, "file")
    flow.ok("dispatch", case_id, "dispatch", department_code=DEPARTMENT)
    with transaction(flow.city.api.runtime.sessions) as session:  # make it overdue
        session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(step_deadline=datetime.now(UTC) - timedelta(hours=1))
        )
    # A hotline case next door: only those who may see it find it among `nearby`.
    detail = flow.case("intake", case_id)
    neighbour = flow.client.post(
        "/api/v1/cases",
        json={"source": "hotline_12345", "category_code": "0102", "description": "来电：垃圾",
              "location": {"lon": detail["lon"] + 0.0002, "lat": detail["lat"]}},
        headers=flow.headers["intake"],
    )  # fmt: skip
    assert neighbour.status_code == 201, neighbour.text
    neighbour_id = neighbour.json()["id"]
    photo_id = detail["reports"][0]["photos"][0]["photo_id"]
    tile = _tile_of(flow, case_id, 16)
    checked = 0
    for name, role, sees in _viewers(flow):
        headers = flow.headers[name]
        who = (name, role.value)
        reads = {
            "detail": flow.client.get(f"/api/v1/cases/{case_id}", headers=headers),
            "report": flow.client.get(f"/api/v1/reports/{report_id}", headers=headers),
            "photo": flow.client.get(f"/api/v1/photos/{photo_id}", headers=headers),
        }
        for what, answer in reads.items():
            assert answer.status_code == (200 if sees else 403), (who, what, answer.text)
        if sees:
            nearby = {c["id"] for c in reads["detail"].json()["nearby"]}
            command = role in (Role.intake_operator, Role.shift_lead, Role.dispatcher, Role.admin)
            assert nearby == ({neighbour_id} if command else set()), (who, "nearby")
        listed = {
            "list": _ids(flow.client.get("/api/v1/cases", headers=headers).json()["items"]),
            "overdue": _ids(
                flow.client.get("/api/v1/cases/overdue", headers=headers).json()["items"]
            ),
            "export": {
                f["properties"]["id"]
                for f in flow.client.get("/api/v1/cases/export.geojson", headers=headers).json()[
                    "features"
                ]
            },
            "tile": _tile_ids(flow, tile, headers),
        }
        for what, ids in listed.items():
            assert (case_id in ids) is sees, (who, what)
        duplicates = flow.client.get(f"/api/v1/cases/{case_id}/duplicates", headers=headers)
        command = role in (Role.intake_operator, Role.shift_lead, Role.dispatcher, Role.admin)
        assert duplicates.status_code == (200 if command and sees else 403), (who, duplicates.text)
        for action in (a for a in ACTIONS.values() if not a.by_phone):
            answer = flow.act(name, case_id, action.name, expected_version=STALE, comment="x")
            allowed = sees and role in action.roles
            expected = (409, "case_changed") if allowed else (403, None)
            assert answer.status_code == expected[0], (who, action.name, answer.text)
            if expected[1]:
                assert answer.json()["code"] == expected[1]
            checked += 1
        verifier = flow.client.post(
            f"/api/v1/cases/{case_id}/verifier", json={"username": "lina"}, headers=headers
        )
        may_assign = sees and role in (Role.shift_lead, Role.dispatcher, Role.admin)
        # Allowed, but the case is not handled yet: 409; never a 200 from here.
        assert verifier.status_code == (409 if may_assign else 403), (who, verifier.text)
    assert checked == 10 * 18  # actions × viewers
    after = flow.case("chief", case_id)
    assert after["status"] == "dispatched" and after["version"] == 3, "nothing changed"


def _ids(items: list[dict[str, Any]]) -> set[int]:
    return {int(item["id"]) for item in items}


def _tile_of(flow: CaseCity, case_id: int, z: int) -> tuple[int, int, int]:
    case = flow.case("chief" if "chief" in flow.headers else "intake", case_id)
    n = 2**z
    x = int((case["lon"] + 180) / 360 * n)
    lat = math.radians(case["lat"])
    y = int((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * n)
    return z, x, y


def _tile_ids(flow: CaseCity, tile: tuple[int, int, int], headers: dict[str, str]) -> set[int]:
    z, x, y = tile
    answer = flow.client.get(f"/api/v1/tiles/cases/{z}/{x}/{y}.mvt", headers=headers)
    assert answer.status_code in (200, 204), answer.text
    if answer.status_code == 204:
        return set()
    layers = mapbox_vector_tile.decode(answer.content)
    return {int(f["properties"]["id"]) for f in layers.get("cases", {}).get("features", [])}
