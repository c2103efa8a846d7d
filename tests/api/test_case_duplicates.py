"""Duplicate suggestions on both profiles: the same cases at the radius and window boundaries
(PostGIS geography and the Python metric agree), other categories and final statuses left
out, a category file's settings applied, the caller's unit respected, roles and 404s."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from backend.accounts import service as accounts
from backend.accounts.models import Role
from backend.cases.models import CaseStatus
from backend.categories.service import default_file
from backend.categories.taxonomy import parse
from backend.core.db import transaction
from tests.api.test_categories_api import upload
from tests.api.test_grids_api import assert_problem
from tests.support.apps import TEST_PASSWORD, ApiHarness
from tests.support.cases import T0, offset
from tests.support.cases import seed_cases as add_cases

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
INSIDE, OUTSIDE = "330106001001", "330106001003"  # communities (org units)


def duplicates(api: ApiHarness, case_id: int, headers: dict[str, str], **params: Any) -> Any:
    return api.client.get(f"/api/v1/cases/{case_id}/duplicates", params=params, headers=headers)


def found(api: ApiHarness, case_id: int, headers: dict[str, str], **params: Any) -> list[int]:
    response = duplicates(api, case_id, headers, **params)
    assert response.status_code == 200, response.text
    return [item["case_id"] for item in response.json()["items"]]


def staff(api: ApiHarness, name: str, role: Role, unit: str | None = None) -> dict[str, str]:
    with transaction(api.runtime.sessions) as session:
        accounts.create_user(
            session, username=name, password=TEST_PASSWORD, role=role, unit_code=unit
        )
    return api.token_for(name)


def test_radius_window_category_and_status(api: ApiHarness) -> None:
    # No category file imported: the defaults, 50 m and 7 days either side.
    subject, *ids = add_cases(
        api,
        {},
        {"at": offset(north_m=45), "created_at": T0 + timedelta(hours=1)},
        {"at": offset(north_m=55)},
        {"at": offset(north_m=35, east_m=35)},  # 49.5 m: east-west is scaled right
        {"at": offset(north_m=40, east_m=40)},  # 56.6 m
        {"at": offset(east_m=30), "created_at": T0 - 7 * DAY + MINUTE},
        {"at": offset(east_m=30), "created_at": T0 - 7 * DAY - MINUTE},
        {"at": offset(north_m=10), "created_at": T0 + 7 * DAY - MINUTE},
        {"at": offset(north_m=10), "created_at": T0 + 7 * DAY + MINUTE},
        {"at": offset(north_m=20), "status": CaseStatus.dispatched, "report_count": 3},
        {"at": offset(north_m=5), "category_code": "0505"},
        {"at": offset(north_m=5), "status": CaseStatus.declined},
        {"at": offset(north_m=5), "status": CaseStatus.voided},
        {"at": offset(north_m=5), "status": CaseStatus.closed},
    )
    at45, _at55, diagonal_in, _diagonal_out, early_in, _early, late_in, _late, open_ = ids[:9]
    admin = api.token_for("chief", Role.admin)
    response = duplicates(api, subject, admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["case_id"] == subject and body["category_code"] == "0504"
    assert body["radius_m"] == 50 and body["window_minutes"] == 7 * 24 * 60
    items = body["items"]
    assert [i["case_id"] for i in items] == [late_in, open_, early_in, at45, diagonal_in]
    assert [i["distance_m"] for i in items] == [10.0, 20.0, 30.0, 45.0, 49.5]
    assert items[1]["status"] == "dispatched" and items[1]["report_count"] == 3
    assert items[0]["grid_code"] == "330106001001001" and items[0]["address"]
    assert found(api, subject, admin, limit=2) == [late_in, open_]
    # It works both ways: the subject is a duplicate candidate of the case 45 m away.
    assert subject in found(api, at45, admin)


def test_a_category_files_settings_apply(api: ApiHarness) -> None:
    admin = api.token_for("chief", Role.admin)
    document = yaml.safe_load(default_file())
    street = next(major for major in document["categories"] if major["code"] == "05")
    shop_front = next(c for c in street["children"] if c["code"] == "0504")
    shop_front["duplicates"] = {"radius_m": 20, "window": "12h"}
    assert upload(api, yaml.safe_dump(document, allow_unicode=True).encode(), admin).is_success
    shown = api.client.get("/api/v1/categories/0504", headers=admin).json()["duplicates"]
    assert shown == {"radius_m": 20.0, "window_minutes": 12 * 60}
    exported = parse(api.client.get("/api/v1/categories/export", headers=admin).content)
    stored = next(spec for spec in exported if spec.code == "0504")
    assert (stored.dup_radius_m, stored.dup_window_minutes) == (20.0, 12 * 60)

    subject, near, _too_far, _too_old = add_cases(
        api,
        {},
        {"at": offset(north_m=18)},
        {"at": offset(north_m=25)},
        {"at": offset(north_m=5), "created_at": T0 - 13 * 60 * MINUTE},
    )
    body = duplicates(api, subject, admin).json()
    assert (body["radius_m"], body["window_minutes"]) == (20, 12 * 60)
    assert [i["case_id"] for i in body["items"]] == [near]
    # The defaults' 0501 (hawkers): 100 m, 1 day.
    hawker, within, _too_old = add_cases(
        api,
        {"category_code": "0501"},
        {"category_code": "0501", "at": offset(north_m=90), "created_at": T0 - 20 * 60 * MINUTE},
        {"category_code": "0501", "at": offset(north_m=10), "created_at": T0 - 2 * DAY},
    )
    assert found(api, hawker, admin) == [within]


def test_only_cases_in_the_callers_unit_are_shown(api: ApiHarness) -> None:
    inside_grid, outside_grid = INSIDE + "001", OUTSIDE + "001"
    subject, outside, nowhere, inside = add_cases(
        api,
        {"grid_code": inside_grid},
        {"grid_code": outside_grid, "at": offset(north_m=5)},
        {"grid_code": None, "at": offset(north_m=6)},  # matched no grid
        {"grid_code": inside_grid, "at": offset(north_m=7)},
    )
    intake = staff(api, "intake1", Role.intake_operator, INSIDE)
    # The nearer outside cases do not use up the limit.
    assert found(api, subject, intake, limit=1) == [inside]
    assert found(api, subject, intake) == [inside]
    street_lead = staff(api, "lead1", Role.shift_lead, INSIDE[:9])  # the street: both
    assert found(api, subject, street_lead) == [outside, inside]
    for role in (Role.dispatcher, Role.admin):  # city-wide: everything, gridless too
        headers = staff(api, f"city_{role.value}", role)
        assert found(api, subject, headers) == [outside, nowhere, inside]
    other = staff(api, "intake2", Role.intake_operator, OUTSIDE)
    assert_problem(duplicates(api, subject, other), 403, "case_out_of_scope")
    assert_problem(duplicates(api, nowhere, intake), 403, "case_out_of_scope")
    assert found(api, outside, other) == []


@pytest.mark.parametrize("role", [Role.inspector, Role.department_handler])
def test_roles_and_bad_requests(api: ApiHarness, role: Role) -> None:
    (subject,) = add_cases(api, {})
    assert_problem(duplicates(api, subject, api.token_for("someone", role)), 403, "forbidden")
    assert api.client.get(f"/api/v1/cases/{subject}/duplicates").status_code == 401
    admin = api.token_for("chief", Role.admin)
    assert_problem(duplicates(api, subject + 1000, admin), 404, "case_not_found")
    for bad in ("0", str(2**31), "abc"):
        response = api.client.get(f"/api/v1/cases/{bad}/duplicates", headers=admin)
        assert_problem(response, 422, "validation_error")
    for limit in (0, 51, "x"):
        assert_problem(duplicates(api, subject, admin, limit=limit), 422, "validation_error")
