"""A case walked from a phone's report to closure through the API, on both profiles:
intake, filing, dispatch, the department's fix and the inspector's verification through sync,
rework, closure; illegal steps are 409s with a code; every step is timed and audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.accounts.models import Role
from backend.audit.service import audit_key, verify_log
from backend.core.db import transaction
from tests.api.test_grids_api import assert_problem
from tests.support.apps import ApiHarness
from tests.support.case_flow import DEPARTMENT, OTHER_DEPARTMENT, CaseCity, case_city
from tests.support.sync import device_headers
from tests.support.sync_city import APP_VERSION


@pytest.fixture
def flow(api: ApiHarness, tmp_path: Path) -> CaseCity:
    return case_city(api, tmp_path)


def test_a_report_is_walked_to_closure_with_one_rework(flow: CaseCity) -> None:
    report_id, case_id = flow.report("zhangwei", grid=0)
    case = flow.case("intake", case_id)
    assert case["status"] == "reported" and case["source"] == "inspector"
    assert case["step"] == "accept" and case["step_deadline"] is not None
    assert case["reports"][0]["id"] == report_id
    assert case["reports"][0]["photos"][0]["links"]["original"]
    assert "file" in case["allowed_actions"] and "close" not in case["allowed_actions"]
    assert case["grid_polygon"]["type"] in ("Polygon", "MultiPolygon")

    assert_problem(flow.act("intake", case_id, "close"), 409, "illegal_transition")
    flow.ok("intake", case_id, "accept")
    filed = flow.ok("intake", case_id, "file", comment="属实，立案")
    assert filed["status"] == "filed" and filed["step"] == "dispatch"
    assert flow.phone("zhangwei").pull() and (
        flow.phone("zhangwei").records("report")[report_id]["status"] == "accepted"
    )

    assert_problem(flow.act("intake", case_id, "dispatch", department_code=DEPARTMENT), 403,
                   "action_not_allowed")  # fmt: skip
    assert_problem(flow.act("dispatch", case_id, "dispatch"), 422, "case_input_invalid")
    assert_problem(flow.act("dispatch", case_id, "dispatch", department_code="nope"), 404,
                   "department_not_found")  # fmt: skip
    dispatched = flow.ok("dispatch", case_id, "dispatch", department_code=DEPARTMENT)
    assert dispatched["status"] == "dispatched" and dispatched["step"] == "handle"

    # The department's phone receives the task, fixes the problem, sends after-photos.
    handle = _only(flow.tasks("handler"))
    assert handle["kind"] == "handle" and handle["case"]["id"] == case_id
    assert handle["photo_ids"], "the phone gets the photos of the problem as found"
    flow.complete("handler", handle["id"], "done")
    assert flow.tasks("handler") == {}, "the done task leaves the handler's phone"
    handled = flow.case("intake", case_id)
    assert handled["status"] == "handled" and handled["step"] == "check"

    # Verification goes to the reporter, still responsible for the grid.
    verify = _only(flow.tasks("zhangwei"))
    assert verify["kind"] == "verify"
    flow.complete("zhangwei", verify["id"], "not_fixed")
    verified = flow.case("intake", case_id)
    assert verified["status"] == "verified"
    assert_problem(flow.act("intake", case_id, "close"), 409, "illegal_transition")
    assert_problem(flow.act("lead", case_id, "rework"), 422, "comment_required")
    reworked = flow.ok("lead", case_id, "rework", comment="摊位仍在，返工")
    assert reworked["status"] == "dispatched" and reworked["rework_count"] == 1

    flow.complete("handler", _only(flow.tasks("handler"))["id"], "done")
    flow.complete("zhangwei", _only(flow.tasks("zhangwei"))["id"], "fixed")
    assert "evidence_far_from_case" not in flow.case("intake", case_id)["flags"]
    closed = flow.ok("intake", case_id, "close", comment="结案")
    assert closed["status"] == "closed" and closed["step"] is None
    assert closed["closed_at"] is not None and closed["allowed_actions"] == []

    actions = [e["action"] for e in closed["timeline"]]
    assert actions == [
        "open", "accept", "file", "dispatch", "handle", "verify", "rework", "handle", "verify",
        "close",
    ]  # fmt: skip
    steps = [(s["step"], s["round"]) for s in closed["steps"]]
    assert steps == [
        ("accept", 1), ("dispatch", 1), ("handle", 1), ("check", 1), ("handle", 2), ("check", 2),
    ]  # fmt: skip
    assert all(s["finished_at"] and s["working_minutes"] is not None for s in closed["steps"])
    purposes = sorted(r["purpose"] for r in closed["reports"])
    assert purposes == ["handling", "handling", "verification", "verification", "violation"]
    phone = flow.phone("zhangwei")
    phone.pull()
    assert phone.records("report")[report_id]["status"] == "closed"
    assert flow.tasks("zhangwei") == {} and flow.tasks("handler") == {}
    _audit_verifies(flow, case_id, expected=len(actions))


def test_illegal_and_stale_actions_change_nothing(flow: CaseCity) -> None:
    _, case_id = flow.report("zhangwei")
    before = flow.case("intake", case_id)
    assert_problem(flow.act("intake", case_id, "decline"), 422, "comment_required")
    assert_problem(flow.act("intake", case_id, "rework", comment="x"), 409, "illegal_transition")
    assert_problem(flow.act("intake", case_id, "accept", expected_version=99), 409, "case_changed")
    assert_problem(flow.act("zhangwei", case_id, "accept"), 403, "action_not_allowed")
    assert_problem(flow.act("intake", case_id, "teleport"), 422, "validation_error")
    assert_problem(flow.act("intake", 999999, "accept"), 404, "case_not_found")
    after = flow.case("intake", case_id)
    assert after["version"] == before["version"] and after["timeline"] == before["timeline"]
    declined = flow.ok("intake", case_id, "decline", comment="不属于城管职责",
                       expected_version=before["version"])  # fmt: skip
    assert declined["status"] == "declined" and declined["decline_reason"] == "不属于城管职责"
    assert_problem(flow.act("intake", case_id, "file"), 409, "illegal_transition")


def test_a_department_can_return_a_case_that_is_not_theirs(flow: CaseCity) -> None:
    _, case_id = flow.report("zhangwei")
    flow.ok("intake", case_id, "file")
    flow.ok("dispatch", case_id, "dispatch", department_code=DEPARTMENT)
    assert len(flow.tasks("handler")) == 1
    assert_problem(flow.act("handler", case_id, "return"), 422, "comment_required")
    returned = flow.ok("handler", case_id, "return", comment="属环卫职责")
    assert returned["status"] == "filed" and returned["department_code"] is None
    assert flow.tasks("handler") == {}, "the cancelled task leaves the phone"
    # Now it is not theirs any more: no read, no action.
    assert_problem(
        flow.client.get(f"/api/v1/cases/{case_id}", headers=flow.headers["handler"]),
        403, "case_out_of_scope",
    )  # fmt: skip
    flow.ok("dispatch", case_id, "dispatch", department_code=OTHER_DEPARTMENT)
    assert_problem(flow.act("handler", case_id, "return", comment="x"), 403, "case_out_of_scope")


def test_reassigned_verification_leaves_the_first_phone_as_a_tombstone(flow: CaseCity) -> None:
    _, case_id = flow.report("zhangwei")
    flow.ok("intake", case_id, "file")
    flow.ok("dispatch", case_id, "dispatch", department_code=DEPARTMENT)
    flow.complete("handler", _only(flow.tasks("handler"))["id"], "done")
    task = _only(flow.tasks("zhangwei"))
    lina = flow.phone("lina")
    lina.pull()
    assert lina.records("task") == {}

    # lina patrols another community: not hers to verify.
    elsewhere = flow.client.post(
        f"/api/v1/cases/{case_id}/verifier", json={"username": "lina"}, headers=flow.headers["lead"]
    )
    assert_problem(elsewhere, 422, "case_input_invalid")
    flow.city.add_inspector("wangfang", [flow.city.codes[2]])  # same community as grid 0
    moved = flow.client.post(
        f"/api/v1/cases/{case_id}/verifier",
        json={"username": "wangfang"},
        headers=flow.headers["lead"],
    )
    assert moved.status_code == 200, moved.text
    [tombstone] = flow.task_changes("zhangwei")
    assert (tombstone["op"], tombstone["reason"]) == ("delete", "out_of_scope")
    assert flow.tasks("zhangwei") == {}
    assert list(flow.tasks("wangfang")) == [task["id"]]
    # The first phone, offline meanwhile, completes it anyway: refused, nothing stored.
    zhangwei = flow.phone("zhangwei")
    photo, _ = flow.photo(0)
    zhangwei.complete_task(task["id"], "fixed", flow.city.centre_of(0), [photo])
    result = zhangwei.push().results[-1]
    assert result.status.value == "rejected" and result.code == "task_not_yours", result
    handled = flow.case("lead", case_id)
    assert handled["status"] == "handled"
    assert [r["purpose"] for r in handled["reports"]] == ["violation", "handling"], (
        "nothing of the refused completion was kept"
    )
    flow.complete("wangfang", task["id"], "fixed", grid=2)
    assert flow.case("lead", case_id)["status"] == "verified"
    verified = flow.case("lead", case_id)
    # wangfang photographed from the centre of grid 2, ~190 m away from the case: suspect.
    assert "evidence_far_from_case" in verified["flags"]
    assert "far_from_case" in verified["reports"][-1]["flags"]
    bad = flow.client.post(
        f"/api/v1/cases/{case_id}/verifier", json={"username": "intake"},
        headers=flow.headers["lead"],
    )  # fmt: skip
    assert_problem(bad, 409, "illegal_transition")


def test_an_on_the_spot_fix_takes_the_short_path(flow: CaseCity) -> None:
    report_id, case_id = flow.report("zhangwei")
    missing = flow.act("intake", case_id, "confirm_fix")
    assert_problem(missing, 409, "evidence_missing")
    assert missing.json()["missing"] == ["after"]
    phone = flow.phone("zhangwei")
    photo, data = flow.photo(0)
    phone.add_photos(report_id, [photo], role="after")
    assert phone.push().results[-1].status.value == "applied"
    from tests.support.photos import direct_upload

    assert direct_upload(flow.city, phone, photo, data).status_code == 200
    closed = flow.ok("intake", case_id, "confirm_fix", comment="当场整改完毕")
    assert closed["status"] == "closed" and closed["on_spot"] is True
    assert [s["step"] for s in closed["steps"]] == ["accept"]


def test_cases_from_other_sources_keep_their_source(flow: CaseCity) -> None:
    lon, lat = flow.city.geoms[3].centroid.x, flow.city.geoms[3].centroid.y
    body = {
        "source": "hotline_12345",
        "source_ref": "12345-20261123-0042",
        "category_code": "0102",
        "description": "市民来电：小区门口垃圾堆积",
        "address": "文一路 8 号",
        "location": {"lon": lon, "lat": lat},
    }
    made = flow.client.post("/api/v1/cases", json=body, headers=flow.headers["intake"])
    assert made.status_code == 201, made.text
    case = made.json()
    assert case["source"] == "hotline_12345" and case["source_ref"] == "12345-20261123-0042"
    assert case["grid_code"] == flow.city.codes[3] and case["report_count"] == 0
    assert case["status"] == "reported" and case["step"] == "accept"
    for wrong, code in (
        ({**body, "source": "inspector"}, "case_input_invalid"),
        ({**body, "location": {"lon": lon, "lat": lat, "crs": "utm"}}, "case_input_invalid"),
        ({**body, "location": {"lon": 200, "lat": lat}}, "validation_error"),
    ):
        assert_problem(
            flow.client.post("/api/v1/cases", json=wrong, headers=flow.headers["intake"]),
            422, code,
        )  # fmt: skip
    dispatcher = flow.client.post("/api/v1/cases", json=body, headers=flow.headers["dispatch"])
    assert_problem(dispatcher, 403, "forbidden")
    elsewhere = flow.user("intake-other", Role.intake_operator, unit="330106001003")
    outside = flow.client.post("/api/v1/cases", json=body, headers=elsewhere)
    assert_problem(outside, 403, "case_out_of_scope")


def test_duplicates_are_merged_and_keep_their_evidence(flow: CaseCity) -> None:
    first_report, first = flow.report("zhangwei")
    second_report, second = flow.report("zhangwei")
    assert "duplicate_suspected" not in flow.case("intake", first)["flags"]
    assert "duplicate_suspected" in flow.case("intake", second)["flags"]
    assert_problem(flow.act("intake", second, "void"), 422, "case_input_invalid")
    assert_problem(flow.act("intake", second, "void", into_case_id=second), 422,
                   "case_input_invalid")  # fmt: skip
    voided = flow.ok("intake", second, "void", into_case_id=first, comment="重复上报")
    assert voided["status"] == "voided" and voided["merged_into_id"] == first
    target = flow.case("intake", first)
    assert target["report_count"] == 2
    assert sorted(r["id"] for r in target["reports"]) == sorted([first_report, second_report])
    assert all(r["photos"] for r in target["reports"]), "merged reports keep their photos"
    assert target["timeline"][-1]["action"] == "merge_in"
    phone = flow.phone("zhangwei")
    phone.pull()
    reports = phone.records("report")
    assert reports[second_report]["status"] == "merged"
    assert reports[second_report]["case_id"] == first
    flow.ok("intake", first, "decline", comment="已自行整改")
    assert_problem(flow.act("intake", second, "void", into_case_id=first), 409,
                   "illegal_transition")  # fmt: skip


def test_overdue_cases_are_listed_with_the_time_used(flow: CaseCity) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from backend.cases.models import Case

    _, late = flow.report("zhangwei")
    _, on_time = flow.report("zhangwei")
    with transaction(flow.city.api.runtime.sessions) as session:
        session.execute(
            update(Case)
            .where(Case.id == late)
            .values(step_deadline=datetime.now(UTC) - timedelta(minutes=5))
        )
    listed = flow.client.get("/api/v1/cases/overdue", headers=flow.headers["intake"])
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["items"]] == [late]
    assert listed.json()["items"][0]["overdue"] is True
    other = flow.client.get("/api/v1/cases/overdue", headers=flow.headers["handler"])
    assert other.json()["items"] == [], "departments see only what is dispatched to them"
    assert flow.case("intake", on_time)["overdue"] is False


def _only(records: dict[str, dict[str, object]]) -> dict[str, object]:
    assert len(records) == 1, records
    return next(iter(records.values()))


def _audit_verifies(flow: CaseCity, case_id: int, expected: int) -> None:
    from sqlalchemy import select

    from backend.audit.models import AuditEntry

    runtime = flow.city.api.runtime
    with transaction(runtime.sessions) as session:
        result = verify_log(session, audit_key(runtime.settings))
        assert result.problems == []
        actions = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.subject_type == "case", AuditEntry.subject_id == str(case_id)
            )
        ).all()
    assert len(actions) == expected and actions[0] == "case.open"


def test_a_category_the_taxonomy_lacks_is_flagged_for_intake(flow: CaseCity) -> None:
    """A phone with an old category tree still reports (offline): accepted, flagged."""
    _, case_id = flow.report("zhangwei", category="0999")
    case = flow.case("intake", case_id)
    assert "category_unknown" in case["flags"]
    assert case["steps"][0]["limit_minutes"] == 60, "the default accept limit applies"


def test_redispatch_moves_the_task_between_departments(flow: CaseCity) -> None:
    _, case_id = flow.report("zhangwei")
    flow.ok("intake", case_id, "file")
    flow.ok("dispatch", case_id, "dispatch", department_code=DEPARTMENT)
    task = _only(flow.tasks("handler"))
    flow.user("sweeper", Role.department_handler, department=OTHER_DEPARTMENT)
    assert flow.tasks("sweeper") == {}
    assert_problem(flow.act("dispatch", case_id, "redispatch", department_code=DEPARTMENT,
                            comment="x"), 422, "case_input_invalid")  # fmt: skip
    moved = flow.ok("dispatch", case_id, "redispatch", department_code=OTHER_DEPARTMENT,
                    comment="属环卫职责")  # fmt: skip
    assert moved["department_code"] == OTHER_DEPARTMENT and moved["step"] == "handle"
    [tombstone] = flow.task_changes("handler")
    assert (tombstone["id"], tombstone["op"], tombstone["reason"]) == (task["id"], "delete",
                                                                       "deleted")  # fmt: skip
    assert flow.tasks("handler") == {}
    new_task = _only(flow.tasks("sweeper"))
    assert new_task["id"] != task["id"] and new_task["department_code"] == OTHER_DEPARTMENT
    # The first department's phone, offline, still completes the old task: refused.
    handler = flow.phone("handler")
    photo, _ = flow.photo(0)
    handler.complete_task(task["id"], "done", flow.city.centre_of(0), [photo])
    assert handler.push().results[-1].code == "task_closed"
    # Nor can it complete the new one: another department's.
    handler.complete_task(new_task["id"], "done", flow.city.centre_of(0), [flow.photo(0)[0]])
    assert handler.push().results[-1].code == "task_not_yours"
    steps = flow.case("intake", case_id)["steps"]
    assert [(s["step"], s["department_code"]) for s in steps[-2:]] == [
        ("handle", DEPARTMENT), ("handle", OTHER_DEPARTMENT),
    ]  # fmt: skip


def test_a_task_completion_replayed_from_another_device_is_one_completion(
    flow: CaseCity,
) -> None:
    _, case_id = flow.report("zhangwei")
    flow.ok("intake", case_id, "file")
    flow.ok("dispatch", case_id, "dispatch", department_code=DEPARTMENT)
    task = _only(flow.tasks("handler"))
    photo, _ = flow.photo(0)
    args = {
        "task_id": task["id"], "outcome": "done", "comment": "已清理",
        "report_id": "5d0c5e3a-1b2c-4d3e-8f4a-5b6c7d8e9f01",
        "location": flow.city.centre_of(0), "captured_at": "2026-11-23T10:00:00+08:00",
        "photos": [photo],
    }  # fmt: skip
    for phone in (flow.phone("handler"), flow.city.phone("handler")):  # two phones, one act
        answer = flow.client.post(
            "/api/v1/sync/push",
            json={
                "protocol_version": 1, "app_version": APP_VERSION, "device_id": phone.device_id,
                "mutations": [{"id": 1, "name": "task.complete", "args": args,
                               "client_time": "2026-11-23T10:00:05+08:00"}],
            },
            headers=device_headers(phone),
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        result = answer.json()["results"][0]
        assert result["status"] == "applied", result
        assert result["record"] == {"entity": "task", "id": task["id"], "version": 2}
    changed = dict(args, captured_at="2026-11-23T10:05:00+08:00")  # same id, other content
    third = flow.city.phone("handler")
    answer = flow.client.post(
        "/api/v1/sync/push",
        json={"protocol_version": 1, "app_version": APP_VERSION, "device_id": third.device_id,
              "mutations": [{"id": 1, "name": "task.complete", "args": changed,
                             "client_time": "2026-11-23T10:06:00+08:00"}]},
        headers=device_headers(third),
    )  # fmt: skip
    assert answer.json()["results"][0]["code"] == "duplicate_id"
    case = flow.case("intake", case_id)
    assert case["status"] == "handled"
    assert [e["action"] for e in case["timeline"]].count("handle") == 1


def test_a_department_serving_another_unit_cannot_take_the_case(flow: CaseCity) -> None:
    made = flow.client.put(
        "/api/v1/departments",
        json={"code": "gs-jd", "name": "古荡街道", "kind": "street_office",
              "unit_code": "330106002"},
        headers=flow.city.admin,
    )  # fmt: skip
    assert made.status_code == 200, made.text
    _, case_id = flow.report("zhangwei")  # grid 0 lies in street 330106001
    flow.ok("intake", case_id, "file")
    refused = flow.act("dispatch", case_id, "dispatch", department_code="gs-jd")
    assert_problem(refused, 422, "case_input_invalid")


def test_the_reporter_edits_or_withdraws_until_intake(flow: CaseCity) -> None:
    report_id, case_id = flow.report("zhangwei", grid=0)
    phone = flow.phone("zhangwei")
    phone.update_report(report_id, {"category_code": "0510", "location": flow.city.centre_of(1)})
    assert phone.push().results[-1].status.value == "applied"
    case = flow.case("intake", case_id)
    assert (case["category_code"], case["grid_code"]) == ("0510", flow.city.codes[1])
    assert case["timeline"][-1]["action"] == "report_edited"
    phone.pull()
    phone.delete_report(report_id)
    assert phone.push().results[-1].status.value == "applied"
    withdrawn = flow.case("intake", case_id)
    assert withdrawn["status"] == "declined" and withdrawn["timeline"][-1]["action"] == "withdraw"
    assert withdrawn["step"] is None


def test_photo_evidence_flags_reach_the_case(flow: CaseCity) -> None:
    from tests.support.photos import declaration, direct_upload, jpeg_with_exif

    phone = flow.phone("zhangwei")
    data = jpeg_with_exif(None, None, taken="2026:10:01 08:00:00")  # no GPS, a month old
    photo = declaration(data)
    report_id = phone.create_report("0504", "x", "", flow.city.centre_of(0), photos=[photo])
    phone.push()
    assert direct_upload(flow.city, phone, photo, data).status_code == 200
    phone.pull()
    report = phone.records("report")[report_id]
    photo_flags = {f for f in report["flags"] if f.startswith("photo_")}
    assert photo_flags, report["flags"]
    case = flow.case("intake", int(report["case_id"]))
    assert photo_flags <= set(case["flags"])
    listed = flow.client.get(
        "/api/v1/cases", params={"flag": sorted(photo_flags)[0]}, headers=flow.headers["intake"]
    )
    assert [c["id"] for c in listed.json()["items"]] == [case["id"]]
