"""Sync through the reference client against the real service, on both storage profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.security import HTTPAuthorizationCredentials

from backend.accounts.deps import resolve_principal
from backend.accounts.models import Role
from backend.core.db import transaction
from backend.devices import repository as devices
from backend.devices.errors import DeviceRevoked
from backend.reports.service import Locator
from backend.sync import push as push_service
from sync_protocol.client import EnrollmentError
from sync_protocol.messages import ResultStatus
from sync_protocol.push import PushRequest
from tests.api.test_grids_api import assert_problem
from tests.support.apps import ApiHarness
from tests.support.case_flow import decide
from tests.support.sync import AppTransport, device_headers, settled_pull
from tests.support.sync_city import APP_VERSION, SyncCity, build_city


@pytest.fixture
def city(api: ApiHarness, tmp_path: Path) -> SyncCity:
    city = build_city(api, tmp_path)
    city.add_inspector("zhangwei", [city.codes[0], city.codes[1]])
    city.add_inspector("lina", [city.codes[5]])
    return city


def statuses(outcome) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.status.value for r in outcome.results]


def test_enrollment_is_single_use_and_tokens_refresh(city: SyncCity) -> None:
    code = city.enrollment_code("zhangwei")
    client = city.api.client
    body = {"code": code, "device_name": "Mi 13", "platform": "android", "app_version": "1.4.2"}
    first = client.post("/api/v1/devices/enroll", json=body)
    assert first.status_code == 201, first.text
    enrolled = first.json()
    assert (
        enrolled["device_secret"].startswith("xds1.") and enrolled["user"]["username"] == "zhangwei"
    )
    assert_problem(client.post("/api/v1/devices/enroll", json=body), 401, "enrollment_code_invalid")
    lowercase = dict(body, code=city.enrollment_code("zhangwei").lower().replace("-", " "))
    assert client.post("/api/v1/devices/enroll", json=lowercase).status_code == 201
    refreshed = client.post(
        "/api/v1/devices/token",
        json={"device_id": enrolled["device_id"], "device_secret": enrolled["device_secret"]},
    )
    assert refreshed.status_code == 200 and refreshed.json()["access_token"].startswith("xat1.")
    wrong = client.post(
        "/api/v1/devices/token",
        json={"device_id": enrolled["device_id"], "device_secret": "xds1.guess"},
    )
    assert_problem(wrong, 401, "device_credentials_invalid")
    with pytest.raises(EnrollmentError) as refused:
        from sync_protocol.client import SyncClient

        SyncClient.enroll(
            city.tmp / "x.sqlite3", AppTransport(client), "AAAA-BBBB-CCCC", "x", "ios", "1.0.0"
        )
    assert refused.value.code == "enrollment_code_invalid"


def test_report_round_trip_with_grid_match_and_digest(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    report_id = phone.create_report(
        "0504", "店外经营，占用人行道", "文三路 88 号", city.centre_of(1)
    )
    pushed = phone.push()
    assert statuses(pushed) == ["applied"] and pushed.results[0].record.version == 1
    pulled = settled_pull(phone)
    assert pulled.digest_verified
    report = phone.records("report")[report_id]
    assert report["grid"]["code"] == city.codes[1] and report["grid"]["match_kind"] == "inside"
    assert report["status"] == "submitted" and report["received_at"].endswith("Z")
    assert sorted(phone.records("grid")) == sorted([city.codes[0], city.codes[1]])
    assert phone.records("grid")[city.codes[0]]["geometry"]["type"] == "MultiPolygon"


def test_replays_lost_answers_and_gaps(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    phone.create_report("0501", "游商", "", city.centre_of(0))
    phone.push()
    device_id = phone.device_id
    headers = city.api.token_for("admin", Role.admin)  # not a device token
    mutation = {
        "id": 1,
        "name": "report.create",
        "args": {"report_id": "00000000-0000-4000-8000-000000000001"},
    }
    body = {
        "protocol_version": 1,
        "app_version": "1.4.2",
        "device_id": device_id,
        "mutations": [mutation],
    }
    assert_problem(
        city.api.client.post("/api/v1/sync/push", json=body, headers=headers),
        403,
        "device_token_required",
    )
    token = device_headers(phone)
    replay = city.api.client.post("/api/v1/sync/push", json=body, headers=token).json()
    assert replay["results"][0]["status"] == "applied" and replay["results"][0]["replayed"]
    gap = dict(body, mutations=[dict(mutation, id=5)])
    problem = assert_problem(
        city.api.client.post("/api/v1/sync/push", json=gap, headers=token), 409, "mutation_gap"
    )
    assert problem["expected_id"] == 2
    admin = city.api.token_for("admin", Role.admin)
    reports_of_user = city.api.client.get(
        f"/api/v1/devices?user_id={city.user_ids['zhangwei']}", headers=admin
    ).json()
    assert reports_of_user["items"][0]["last_mutation_id"] == 1


def test_rejected_mutation_does_not_block_the_queue(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    first = phone.create_report("0504", "first", "", city.centre_of(0))
    phone.push()
    # A second create with the same id but other content can never apply.
    phone.create_report("0504", "different", "", city.centre_of(0), report_id=first)
    third = phone.create_report("0202", "third", "", city.centre_of(1))
    outcome = phone.push()
    assert statuses(outcome) == ["rejected", "applied"]
    assert outcome.results[0].code == "duplicate_id"
    phone.pull()
    assert set(phone.records("report")) == {first, third}
    assert phone.pending() == []


def test_field_merges_conflicts_and_server_owned_status(city: SyncCity) -> None:
    a, b = city.phone("zhangwei"), city.phone("zhangwei")
    report_id = a.create_report("0504", "原描述", "原地址", city.centre_of(0))
    a.sync()
    b.pull()
    a.update_report(report_id, {"description": "A 的描述"})
    b.update_report(report_id, {"address": "B 的地址"})  # another field: merges
    assert statuses(a.push()) == ["applied"]
    assert statuses(b.push()) == ["applied"]
    b.update_report(report_id, {"description": "B 的描述"})  # same field, stale base: conflict
    conflict = b.push().results[0]
    assert conflict.status is ResultStatus.conflict and conflict.fields == ("description",)
    assert conflict.server == {"description": "A 的描述"}
    a.update_report(report_id, {"description": "A again", "status": "closed"})
    own = a.push().results[0]
    assert own.status is ResultStatus.applied and own.ignored_fields == ("status",)
    a.pull(), b.pull()
    for phone in (a, b):
        report = phone.records("report")[report_id]
        assert (report["description"], report["address"], report["status"]) == (
            "A again",
            "B 的地址",
            "submitted",
        )
    declined = decide(city.api, report_id, "decline", comment="不予立案")
    assert declined.status_code == 200, declined.text
    a.pull()
    a.update_report(report_id, {"address": "too late"})
    assert statuses(a.push()) == ["locked"]


def test_deleted_reports_are_gone_and_leave_as_tombstones(city: SyncCity) -> None:
    a, observer = city.phone("zhangwei"), city.phone("lina")
    report_id = a.create_report("0504", "x", "", city.centre_of(5))  # in lina's grid
    a.push()
    observer.pull()
    assert report_id in observer.records("report")
    a.pull()
    a.delete_report(report_id)
    assert statuses(a.push()) == ["applied"]
    observer.pull(), a.pull()
    assert report_id not in observer.records("report") and report_id not in a.records("report")


def test_scope_is_per_user_and_follows_reassignment(city: SyncCity, tmp_path: Path) -> None:
    zhang, li = city.phone("zhangwei"), city.phone("lina")
    in_zhang_grid = zhang.create_report("0504", "in grid 1", "", city.centre_of(1))
    elsewhere = zhang.create_report("0504", "in grid 8", "", city.centre_of(8))
    zhang.push()
    li.pull()
    assert set(li.records("report")) == set() and set(li.records("grid")) == {city.codes[5]}
    assignment = city.assign("lina", city.codes[1])
    li.pull()
    assert set(li.records("report")) == {in_zhang_grid}
    assert set(li.records("grid")) == {city.codes[1], city.codes[5]}
    city.unassign(city.codes[1], assignment, "2020-01-02")
    outcome = settled_pull(li)
    assert outcome.digest_verified
    assert li.records("report") == {} and set(li.records("grid")) == {city.codes[5]}
    zhang.pull()
    assert set(zhang.records("report")) == {in_zhang_grid, elsewhere}  # own reports, anywhere


def test_revoked_device_stops_at_once_and_keeps_its_outbox(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    phone.create_report("0504", "before revocation", "", city.centre_of(0))
    phone.push()
    admin = city.api.token_for("admin", Role.admin)
    revoked = city.api.client.post(f"/api/v1/devices/{phone.device_id}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "admin"
    phone.create_report("0504", "after revocation", "", city.centre_of(0))
    outcome = phone.push()
    assert outcome.state.value != "ok" and len(phone.pending()) == 1
    assert any(d.type.value == "re_enroll" for d in outcome.directives)


def test_a_revocation_between_auth_and_push_refuses_the_push(city: SyncCity) -> None:
    """The caller is read in a transaction of its own before the push's; a revocation that
    commits in between must still stop the push (its device row is re-read under the lock)."""
    phone = city.phone("zhangwei")
    token = device_headers(phone)["Authorization"].removeprefix("Bearer ")
    runtime = city.api.runtime
    with transaction(runtime.read_sessions) as session:
        principal = resolve_principal(
            session,
            runtime.settings,
            HTTPAuthorizationCredentials(scheme="Bearer", credentials=token),
        )
        index = runtime.grid_indexes.active(session)
    assert principal.device is not None
    seen_before = principal.device.last_seen_at
    admin = city.api.token_for("admin", Role.admin)
    revoked = city.api.client.post(f"/api/v1/devices/{phone.device_id}/revoke", headers=admin)
    assert revoked.status_code == 200
    request = PushRequest(1, APP_VERSION, principal.device.id, [])
    locator = Locator(index, runtime.settings.location_poor_accuracy_m)
    with pytest.raises(DeviceRevoked), transaction(runtime.sessions) as session:
        push_service.push(
            session, device_id=principal.device.id, user=principal.user, request=request,
            locator=locator, directives=[],
        )  # fmt: skip
    with transaction(runtime.read_sessions) as session:
        device = devices.get(session, principal.device.id)
        assert device is not None and device.last_seen_at == seen_before  # nothing written


def test_old_apps_may_push_but_not_pull(city: SyncCity) -> None:
    city.api.runtime.settings.sync_min_app_version = "2.0.0"
    city.api.runtime.settings.sync_recommended_app_version = "2.1.0"
    phone = city.phone("zhangwei", app_version="1.9.9")
    phone.create_report("0504", "made offline", "", city.centre_of(0))
    pushed = phone.push()
    assert statuses(pushed) == ["applied"]
    assert [d.type.value for d in pushed.directives] == ["upgrade_required"]
    pulled = phone.pull()
    assert pulled.state.value != "ok"
    assert [d.type.value for d in pulled.directives] == ["upgrade_required"]


def test_forged_and_foreign_cursors_reset(city: SyncCity) -> None:
    a, b = city.phone("zhangwei"), city.phone("zhangwei")
    a.pull()
    cursor = a._store.cursor()
    token_b = device_headers(b)
    for bad in (cursor, cursor[:-2] + "AA", "c1.e30.AAAA", "garbage"):
        body = {
            "protocol_version": 1,
            "app_version": "1.4.2",
            "device_id": b.device_id,
            "cursor": bad,
        }
        answer = city.api.client.post("/api/v1/sync/pull", json=body, headers=token_b)
        assert answer.status_code == 200, answer.text
        assert answer.json()["reset"] is True and answer.json()["changes"] == []


def test_a_device_cannot_act_as_another(city: SyncCity) -> None:
    a, b = city.phone("zhangwei"), city.phone("lina")
    token_a = device_headers(a)
    body = {
        "protocol_version": 1,
        "app_version": "1.4.2",
        "device_id": b.device_id,
        "mutations": [],
    }
    assert_problem(
        city.api.client.post("/api/v1/sync/push", json=body, headers=token_a),
        403,
        "device_mismatch",
    )
    pull = dict(body, cursor=None)
    del pull["mutations"]
    assert_problem(
        city.api.client.post("/api/v1/sync/pull", json=pull, headers=token_a),
        403,
        "device_mismatch",
    )
    # lina's phone cannot edit zhangwei's report even though it is in her grid.
    report_id = a.create_report("0504", "x", "", city.centre_of(5))
    a.push()
    b.pull()
    b.update_report(report_id, {"description": "not mine"})
    result = b.push().results[0]
    assert result.status is ResultStatus.rejected and result.code == "forbidden"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"protocol_version": 2, "app_version": "1.0.0", "mutations": []},
            400,
            "unsupported_protocol",
        ),
        (
            {"protocol_version": 1, "app_version": "banana", "mutations": []},
            400,
            "invalid_app_version",
        ),
        (
            {"protocol_version": 1, "app_version": "1.0.0", "mutations": [], "extra": 1},
            422,
            "invalid_message",
        ),
        (
            {
                "protocol_version": 1,
                "app_version": "1.0.0",
                "mutations": [
                    {"id": 1, "name": "x", "args": {}},
                    {"id": 3, "name": "x", "args": {}},
                ],
            },
            422,
            "invalid_batch",
        ),
        (
            {
                "protocol_version": 1,
                "app_version": "1.0.0",
                "mutations": [{"id": i, "name": "x", "args": {}} for i in range(1, 202)],
            },
            413,
            "batch_too_large",
        ),
    ],
)
def test_bad_push_messages_are_problems(city: SyncCity, body, status: int, code: str) -> None:
    phone = city.phone("zhangwei")
    token = device_headers(phone)
    body = dict(body, device_id=phone.device_id)
    assert_problem(
        city.api.client.post("/api/v1/sync/push", json=body, headers=token), status, code
    )


def test_pruned_history_resets_old_cursors_instead_of_skipping(city: SyncCity) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from backend.core.db import transaction
    from backend.sync.maintenance import prune_change_log
    from backend.sync.models import ChangeLogEntry

    phone, other = city.phone("zhangwei"), city.phone("zhangwei")
    first = phone.create_report("0504", "old", "", city.centre_of(0))
    phone.sync()
    other.pull()  # other's cursor now sits inside the history about to be pruned
    second = phone.create_report("0504", "newer", "", city.centre_of(0))
    phone.push()
    with transaction(city.api.runtime.sessions) as session:
        session.execute(
            update(ChangeLogEntry).values(changed_at=datetime.now(UTC) - timedelta(days=40))
        )
        assert prune_change_log(session, older_than_days=30) == 2
    outcome = settled_pull(other)
    assert outcome.resets == 1 and outcome.digest_verified
    assert set(other.records("report")) == {first, second}
    # The emptied log keeps counting forward: new changes land after every cursor.
    third = phone.create_report("0504", "after pruning", "", city.centre_of(0))
    phone.push()
    # settled: on PostgreSQL another database's open transaction (a parallel test) may
    # withhold the entry for a moment (ADR 0007); what matters is no reset and no gap.
    assert settled_pull(other).resets == 0
    assert set(other.records("report")) == {first, second, third}


def test_oversized_push_and_foreign_report_reads_are_refused(city: SyncCity) -> None:
    zhang, li = city.phone("zhangwei"), city.phone("lina")
    report_id = zhang.create_report("0504", "x", "", city.centre_of(0))
    zhang.push()
    li_user = city.api.client.post(
        "/api/v1/auth/token", json={"username": "lina", "password": "patrol-pass-1"}
    ).json()
    li_headers = {"Authorization": f"Bearer {li_user['access_token']}"}
    assert_problem(
        city.api.client.get(f"/api/v1/reports/{report_id}", headers=li_headers), 403, "forbidden"
    )
    token = device_headers(li)
    huge = {
        "protocol_version": 1,
        "app_version": "1.4.2",
        "device_id": li.device_id,
        "mutations": [{"id": 1, "name": "report.create", "args": {"pad": "x" * 1_100_000}}],
    }
    assert_problem(
        city.api.client.post("/api/v1/sync/push", json=huge, headers=token),
        413,
        "batch_too_large",
    )
