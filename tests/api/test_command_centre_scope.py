"""Command-centre scope by org unit, on both profiles: a matrix of role × inside/outside the
unit × endpoint (read a report, decide its status, read its photo). No cross-unit read or
write gets through; admins see all; department handlers see no reports (only what is
dispatched to them, once cases exist)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.accounts.models import Role
from tests.api.test_grids_api import assert_problem
from tests.support.apps import TEST_PASSWORD, ApiHarness
from tests.support.photos import direct_upload, jpeg_with_exif, photo_city, report_with_photo
from tests.support.sync_city import SyncCity

INSIDE, OUTSIDE = "330106001001", "330106001003"  # communities: grid 0 lies in the first


@pytest.fixture
def city(api: ApiHarness, tmp_path: Path) -> SyncCity:
    return photo_city(api, tmp_path)


def _user(api: ApiHarness, admin: dict[str, str], name: str, role: Role, unit: str | None) -> Any:
    body: dict[str, Any] = {"username": name, "password": TEST_PASSWORD, "role": role.value}
    if unit is not None:
        body["unit_code"] = unit
    created = api.client.post("/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    return api.token_for(name)


def test_the_scope_matrix(city: SyncCity) -> None:
    api = city.api
    admin = api.token_for("chief", Role.admin)
    phone = city.phone("zhangwei")
    lon, lat = city.geoms[0].centroid.x, city.geoms[0].centroid.y
    data = jpeg_with_exif(lon, lat)
    photo = report_with_photo(city, phone, data, grid=0)
    assert direct_upload(city, phone, photo, data).status_code == 200
    phone.pull()
    report_id, report = next(iter(phone.records("report").items()))
    case_id, decided = report["case_id"], 0

    cases = []
    for role in (Role.intake_operator, Role.shift_lead, Role.dispatcher):
        for unit, allowed in ((INSIDE, True), (INSIDE[:9], True), (OUTSIDE, False), (None, True)):
            cases.append((role, unit, allowed))
    cases += [(Role.department_handler, None, False), (Role.admin, None, True)]
    cases += [(Role.inspector, None, False)]  # another inspector, no grids

    for i, (role, unit, allowed) in enumerate(cases):
        headers = _user(api, admin, f"u{i}", role, unit)
        read = api.client.get(f"/api/v1/reports/{report_id}", headers=headers)
        seen = api.client.get(f"/api/v1/photos/{photo['photo_id']}", headers=headers)
        what = (role.value, unit)
        if allowed:
            assert read.status_code == 200 and seen.status_code == 200, what
        else:
            assert_problem(read, 403, "forbidden")
            assert_problem(seen, 403, "forbidden")
        # Accepting the report's case: the first allowed user does; later ones find it
        # accepted already (409), but nobody out of scope or role ever gets through.
        answer = api.client.post(
            f"/api/v1/cases/{case_id}/actions/accept", json={}, headers=headers
        )
        may_decide = allowed and role in (Role.intake_operator, Role.shift_lead, Role.admin)
        assert answer.status_code in ((200, 409) if may_decide else (403,)), (what, answer.text)
        decided += answer.status_code == 200
    assert decided == 1


def test_moving_a_user_to_another_unit_takes_effect_at_once(city: SyncCity) -> None:
    api = city.api
    admin = api.token_for("chief", Role.admin)
    phone = city.phone("zhangwei")
    report_with_photo(city, phone, jpeg_with_exif(None, None), grid=0)
    phone.pull()
    report_id = next(iter(phone.records("report")))
    headers = _user(api, admin, "intake1", Role.intake_operator, INSIDE)
    assert api.client.get(f"/api/v1/reports/{report_id}", headers=headers).status_code == 200
    users = api.client.get("/api/v1/users", headers=admin).json()["items"]
    user_id = next(u["id"] for u in users if u["username"] == "intake1")
    moved = api.client.post(
        f"/api/v1/users/{user_id}/unit", json={"unit_code": OUTSIDE}, headers=admin
    )
    assert moved.status_code == 200 and moved.json()["unit_code"] == OUTSIDE
    assert api.client.get(f"/api/v1/reports/{report_id}", headers=headers).status_code == 403
    bad = api.client.post(
        f"/api/v1/users/{user_id}/unit", json={"unit_code": "3301"}, headers=admin
    )
    assert_problem(bad, 422, "validation_error")
