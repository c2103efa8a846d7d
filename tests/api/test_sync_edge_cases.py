"""Regressions for sync edge cases found in review, on both storage profiles."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from backend.accounts.models import Role
from sync_protocol.messages import ResultStatus
from tests.api.test_grids_api import assert_problem
from tests.support.apps import ApiHarness
from tests.support.case_flow import decide
from tests.support.grids import geojson_bytes
from tests.support.sync import device_headers, settled_pull
from tests.support.sync_city import SyncCity, build_city


@pytest.fixture
def city(api: ApiHarness, tmp_path: Path) -> SyncCity:
    city = build_city(api, tmp_path)
    city.add_inspector("zhangwei", [city.codes[0], city.codes[1]])
    city.add_inspector("lina", [city.codes[5]])
    return city


def push_raw(city: SyncCity, phone: Any, mutations: list[dict[str, Any]]) -> Any:
    body = {
        "protocol_version": 1,
        "app_version": "1.4.2",
        "device_id": phone.device_id,
        "mutations": mutations,
    }
    # Serialised by hand: ASCII escapes carry lone surrogates the way a buggy phone would.
    return city.api.client.post(
        "/api/v1/sync/push",
        content=json.dumps(body),
        headers={**device_headers(phone), "content-type": "application/json"},
    )


def create_args(city: SyncCity, **overrides: Any) -> dict[str, Any]:
    args = {
        "report_id": str(uuid.uuid4()),
        "category_code": "0504",
        "description": "店外经营",
        "address": "",
        "location": city.centre_of(0),
        "captured_at": "2026-11-23T08:14:40+08:00",
        "photos": [],
    }
    args.update(overrides)
    return args


def review(city: SyncCity, report_id: str, action: str, **body: str) -> None:
    response = decide(city.api, report_id, action, **body)
    assert response.status_code == 200, response.text


def test_a_noop_edit_does_not_make_someone_elses_version_ones_own(city: SyncCity) -> None:
    from tests.support.photos import declaration, direct_upload, jpeg_with_exif

    phone = city.phone("zhangwei")
    data = jpeg_with_exif(None, None)
    photo = declaration(data)
    report_id = phone.create_report("0504", "x", "", city.centre_of(0), photos=[photo])
    phone.sync()
    assert direct_upload(city, phone, photo, data).status_code == 200  # v2, by the server
    phone.update_report(report_id, {"status": "closed"})  # ignored: a no-op at v2
    phone.delete_report(report_id)  # still based on v1: must not delete unseen evidence
    first, second = phone.push().results
    assert first.status is ResultStatus.applied and first.ignored_fields == ("status",)
    assert second.status is ResultStatus.conflict and "photos" in second.fields


def test_an_accepted_report_is_evidence_phones_can_no_longer_change(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    report_id = phone.create_report("0504", "x", "", city.centre_of(0))
    phone.sync()
    review(city, report_id, "accept")
    phone.pull()
    phone.update_report(report_id, {"description": "changed after intake"})
    phone.delete_report(report_id)
    assert [r.status for r in phone.push().results] == [ResultStatus.locked] * 2


def test_a_noop_on_another_phones_version_keeps_later_edits_honest(city: SyncCity) -> None:
    a, b = city.phone("zhangwei"), city.phone("zhangwei")
    report_id = a.create_report("0504", "原描述", "原地址", city.centre_of(0))
    a.sync()
    b.pull()
    a.update_report(report_id, {"description": "新描述", "address": "A 的地址"})
    a.push()
    b.update_report(report_id, {"description": "新描述"})  # already the server's value
    b.update_report(report_id, {"address": "B 的地址"})  # on base 1: overlaps A's address
    noop, overlap = b.push().results
    assert noop.status is ResultStatus.applied
    assert overlap.status is ResultStatus.conflict and overlap.server == {"address": "A 的地址"}


def test_recreating_a_deleted_report_is_gone(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    args = create_args(city)
    assert (
        push_raw(city, phone, [{"id": 1, "name": "report.create", "args": args}]).status_code == 200
    )
    push_raw(
        city,
        phone,
        [
            {
                "id": 2,
                "name": "report.delete",
                "args": {"report_id": args["report_id"], "base_version": 1},
            }
        ],
    )
    again = push_raw(city, phone, [{"id": 3, "name": "report.create", "args": args}]).json()
    assert again["results"][0]["status"] == "gone"


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        (
            {
                "location": {
                    "lon": 10**30,
                    "lat": 30,
                    "crs": "wgs84",
                    "accuracy_m": 1,
                    "fix_time": "2026-11-23T08:00:00+08:00",
                    "provider": "gps",
                }
            },
            "report.create",
        ),
        ({"captured_at": "0001-01-01T00:00:00+08:00"}, "report.create"),
        ({"description": "bad \ud800 text"}, "report.create"),
        ({}, "report." + "x" * 57),
    ],
    ids=["huge-integer", "timestamp-overflow", "lone-surrogate", "64-char-name"],
)
def test_values_that_can_never_apply_are_rejected_not_500(
    city: SyncCity, overrides: dict[str, Any], name: str
) -> None:
    phone = city.phone("zhangwei")
    mutations = [
        {"id": 1, "name": name, "args": create_args(city, **overrides)},
        {"id": 2, "name": "report.create", "args": create_args(city)},
    ]
    response = push_raw(city, phone, mutations)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "applied"]


def test_deeply_nested_json_is_a_problem(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    body = "[" * 100_000 + "]" * 100_000
    response = city.api.client.post(
        "/api/v1/sync/pull",
        content=body,
        headers={**device_headers(phone), "content-type": "application/json"},
    )
    assert_problem(response, 422, "invalid_message")


def test_deactivated_user_hears_why(city: SyncCity) -> None:
    phone = city.phone("lina")
    admin = city.api.token_for("admin", Role.admin)
    city.api.client.post(f"/api/v1/users/{city.user_ids['lina']}/deactivate", headers=admin)
    body = {
        "protocol_version": 1,
        "app_version": "1.4.2",
        "device_id": phone.device_id,
        "cursor": None,
    }
    problem = assert_problem(
        city.api.client.post("/api/v1/sync/pull", json=body, headers=device_headers(phone)),
        401,
        "user_inactive",
    )
    assert problem["directives"][0]["type"] == "re_enroll"


def test_records_changed_in_a_leaving_grid_still_get_tombstones(city: SyncCity) -> None:
    zhang, li = city.phone("zhangwei"), city.phone("lina")
    deleted = zhang.create_report("0504", "to delete", "", city.centre_of(5))
    moved = zhang.create_report("0504", "to move", "", city.centre_of(5))
    zhang.sync()
    li.pull()
    assert {deleted, moved} <= set(li.records("report"))
    zhang.delete_report(deleted)
    zhang.update_report(moved, {"location": city.centre_of(6)})
    zhang.push()
    admin = city.api.token_for("admin", Role.admin)
    items = city.api.client.get(f"/api/v1/grids/{city.codes[5]}/assignments", headers=admin)
    assignment = items.json()["items"][0]["id"]
    city.unassign(city.codes[5], assignment, "2020-01-02")
    outcome = settled_pull(li)
    assert outcome.resets == 0 and outcome.digest_verified
    assert li.records("report") == {} and li.records("grid") == {}


def test_reactivating_an_older_grid_version_moves_forward(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    phone.pull()
    admin = city.api.token_for("admin", Role.admin)
    renamed = [f"{c[:-3]}{c[-3:]}" for c in city.codes]
    upload = city.api.client.post(
        "/api/v1/grid-versions",
        files={"file": ("v2.geojson", geojson_bytes(renamed, city.geoms), "application/geo+json")},
        data={"crs": "EPSG:4490", "activate": "true", "label": "v2"},
        headers=admin,
    )
    assert upload.status_code == 201, upload.text
    phone.pull()
    assert {g["version_id"] for g in phone.records("grid").values()} == {2}
    city.api.client.post("/api/v1/grid-versions/1/activate", headers=admin)
    outcome = settled_pull(phone)
    assert outcome.resets == 0 and outcome.digest_verified
    assert {g["version_id"] for g in phone.records("grid").values()} == {1}


def test_huge_scope_changes_reset_instead_of_failing(
    city: SyncCity, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.sync import pull as pull_module

    zhang, li = city.phone("zhangwei"), city.phone("lina")
    for _ in range(4):
        zhang.create_report("0504", "in grid 1", "", city.centre_of(1))
    zhang.push()
    li.pull()
    monkeypatch.setattr(pull_module, "MAX_PULL_LIMIT", 3)
    city.assign("lina", city.codes[1])
    outcome = settled_pull(li)
    assert outcome.resets == 1 and outcome.digest_verified
    assert len(li.records("report")) == 4


def test_quiet_devices_keep_up_with_the_log_and_survive_pruning(city: SyncCity) -> None:
    from datetime import UTC, datetime, timedelta

    from backend.core.db import transaction
    from backend.sync.maintenance import prune_change_log

    quiet, busy = city.phone("lina"), city.phone("zhangwei")
    quiet.pull()
    for _ in range(3):
        busy.create_report("0504", "elsewhere", "", city.centre_of(0))
    busy.push()
    quiet.pull()  # nothing for lina, but her cursor moves past the others' entries
    with transaction(city.api.runtime.sessions) as session:
        prune_change_log(session, 30, now=datetime.now(UTC) + timedelta(days=31))
    assert quiet.pull().resets == 0


def test_digest_matches_even_when_a_commit_lands_mid_pull(
    city: SyncCity, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.core.db import transaction
    from backend.reports import service as reports
    from backend.reports.models import ReportStatus
    from backend.sync import pull as pull_module

    phone = city.phone("zhangwei")
    report_id = phone.create_report("0504", "x", "", city.centre_of(0))
    phone.sync()
    original = pull_module._scope_digest
    fired = []

    def commit_meanwhile(session, ctx, scope):  # type: ignore[no-untyped-def]
        if not fired:
            fired.append(True)
            with transaction(city.api.runtime.sessions) as other:
                reports.set_status(other, report_id, ReportStatus.accepted)
        return original(session, ctx, scope)

    monkeypatch.setattr(pull_module, "_scope_digest", commit_meanwhile)
    outcome = settled_pull(phone)
    assert fired and outcome.resets == 0 and outcome.digest_verified
    monkeypatch.setattr(pull_module, "_scope_digest", original)
    phone.pull()
    assert phone.records("report")[report_id]["status"] == "accepted"
