"""The working calendar on both profiles: defaults, replacement by admins, deadlines."""

from __future__ import annotations

from typing import Any

from backend.accounts.models import Role
from tests.api.test_grids_api import assert_problem
from tests.support.apps import ApiHarness

CITY = b"""version: 1
hours: ["08:30-12:00", "13:30-17:30"]
holidays: ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"]
workdays: ["2026-09-27", "2026-10-10"]
"""


def put(api: ApiHarness, data: bytes, headers: dict[str, str]) -> Any:
    return api.client.post(
        "/api/v1/calendar/import",
        files={"file": ("calendar.yaml", data, "application/yaml")},
        headers=headers,
    )


def deadline(api: ApiHarness, headers: dict[str, str], start: str, limit: str) -> Any:
    return api.client.get(
        "/api/v1/calendar/deadline", params={"start": start, "limit": limit}, headers=headers
    )


def test_deadlines_follow_the_city_calendar(api: ApiHarness) -> None:
    viewer = api.token_for("viewer")
    # Before any import: office hours, weekends off.
    friday = deadline(api, viewer, "2026-09-25T17:00:00+08:00", "1h").json()
    assert friday["deadline"].startswith("2026-09-28T09:00:00")  # Monday
    admin = api.token_for("chief", Role.admin)
    done = put(api, CITY, admin)
    assert done.status_code == 200 and "2026-09-27" in done.json()["workdays"]
    friday = deadline(api, viewer, "2026-09-25T17:00:00+08:00", "1h").json()
    assert friday["deadline"].startswith("2026-09-27T09:00:00")  # the make-up Sunday
    holiday = deadline(api, viewer, "2026-09-30T17:00:00+08:00", "1h").json()
    assert holiday["deadline"].startswith("2026-10-08T09:00:00")  # 3rd/4th are weekend
    days = deadline(api, viewer, "2026-11-23T09:00:00+08:00", "2d").json()
    assert days["working_minutes"] == 900 and days["deadline"].startswith("2026-11-25T09:00:00")
    exported = api.client.get("/api/v1/calendar?format=yaml", headers=viewer)
    assert exported.status_code == 200 and b"2026-10-10" in exported.content


def test_bad_input_and_permissions(api: ApiHarness) -> None:
    viewer = api.token_for("viewer")
    admin = api.token_for("chief", Role.admin)
    assert_problem(put(api, CITY, viewer), 403, "forbidden")
    body = assert_problem(
        put(api, b"version: 1\nweekend: [funday]\n", admin), 422, "calendar_file_invalid"
    )
    assert any("funday" in p for p in body["problems"])
    assert_problem(deadline(api, viewer, "2026-11-23T09:00:00", "1h"), 422, "invalid_input")
    assert_problem(deadline(api, viewer, "2026-11-23T09:00:00+08:00", "1w"), 422, "invalid_input")
    assert api.client.get("/api/v1/calendar").status_code == 401
