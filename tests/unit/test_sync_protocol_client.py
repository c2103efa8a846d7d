"""The reference client where it needs no server: outbox, batching, result handling, pulls.

The server is replaced by a scripted transport that replays canned answers in order. It is a
stand-in for the network, not for the server: it holds no sync logic, and each test scripts
exactly the answers the protocol document says a server gives in that situation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sync_protocol.client import SyncClient
from sync_protocol.digest import digest_of
from sync_protocol.messages import MAX_BATCH_BYTES, MAX_BATCH_MUTATIONS, encode_json
from sync_protocol.mutations import MutationArgsError
from sync_protocol.outcomes import SyncState
from sync_protocol.store import Store
from sync_protocol.transport import Response, TransportError

EXAMPLES = Path(__file__).resolve().parents[2] / "sync_protocol" / "examples"
DEVICE = "9b2f6c1e-4a3d-4f0e-8b7a-2c5d9e1f3a40"
CST = timezone(timedelta(hours=8))
NOW = "2026-11-23T00:20:00Z"
LOCATION = {
    "lon": 120.13454,
    "lat": 30.26763,
    "crs": "gcj02",
    "accuracy_m": 8.0,
    "fix_time": "2026-11-23T08:14:51+08:00",
    "provider": "fused",
}

Answer = Response | Exception | Callable[[dict[str, Any]], Response]


@dataclass
class Sent:
    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class ScriptedTransport:
    """Answers requests from a script, in order; records what was sent."""

    script: list[tuple[str, Answer]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def then(self, path: str, answer: Answer) -> ScriptedTransport:
        self.script.append((path, answer))
        return self

    def request(
        self, method: str, path: str, body: dict[str, object] | None, headers: dict[str, str]
    ) -> Response:
        assert self.script, f"unexpected request {method} {path}"
        expected, answer = self.script.pop(0)
        assert path == expected, f"expected a request to {expected}, got {path}"
        # Round-trip through the wire encoding so nothing non-JSON slips through.
        wire = json.loads(encode_json(body)) if body is not None else {}
        self.sent.append(Sent(method, path, wire, dict(headers)))
        if isinstance(answer, Exception):
            raise answer
        return answer(wire) if callable(answer) else answer

    def done(self) -> bool:
        return not self.script


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return loaded


def problem(status: int, code: str, **extra: Any) -> Response:
    body = {
        "type": f"https://xuncha.example/problems/{code}",
        "title": code,
        "status": status,
        "detail": code,
        "code": code,
        **extra,
    }
    return Response(status, {"content-type": "application/problem+json"}, body)


def results_for(
    body: dict[str, Any], statuses: dict[int, dict[str, Any]] | None = None, **extra: Any
) -> Response:
    """A push answer: each mutation applied unless ``statuses`` says otherwise."""
    results, last = [], body["mutations"][0]["id"] - 1 if body["mutations"] else 0
    for mutation in body["mutations"]:
        result = (statuses or {}).get(mutation["id"]) or {
            "status": "applied",
            "record": {"entity": "report", "id": mutation["args"]["report_id"], "version": 1},
        }
        results.append({"id": mutation["id"], **result})
        if result["status"] == "retry":
            break
        last = mutation["id"]
    return Response(
        200,
        {},
        {
            "results": results,
            "last_mutation_id": last,
            "directives": [],
            "server_time": NOW,
            **extra,
        },
    )


def all_applied(body: dict[str, Any]) -> Response:
    return results_for(body)


def page(changes: list[dict[str, Any]], cursor: str | None, **extra: Any) -> Response:
    body = {
        "changes": changes,
        "cursor": cursor,
        "has_more": False,
        "reset": False,
        "last_mutation_id": 0,
        "directives": [],
        "server_time": NOW,
        **extra,
    }
    return Response(200, {}, body)


def report_put(id: str, version: int, **data: Any) -> dict[str, Any]:
    return {
        "entity": "report",
        "id": id,
        "op": "put",
        "version": version,
        "data": {"id": id, "version": version, **data},
    }


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 15, tzinfo=CST)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def transport() -> ScriptedTransport:
    return ScriptedTransport()


@pytest.fixture
def client(tmp_path: Path, transport: ScriptedTransport) -> SyncClient:
    """An enrolled client (via the golden enrollment example)."""
    enrolled = example("enrollment.json")
    transport.then("/api/v1/devices/enroll", Response(201, {}, enrolled["response"]))
    return SyncClient.enroll(
        tmp_path / "phone.sqlite3",
        transport,
        "K7QF-2MXD-9RTB",
        "Redmi",
        "android",
        "1.4.2",
        clock=Clock(),
    )


def add_reports(client: SyncClient, count: int, description: str = "占道经营") -> list[str]:
    return [
        client.create_report("0504", description, "文三路 88 号", LOCATION) for _ in range(count)
    ]


# -- enrollment and the outbox ---------------------------------------------------------------


def test_enrollment_stores_credentials(client: SyncClient, transport: ScriptedTransport) -> None:
    sent = transport.sent[0]
    assert sent.body == {
        "code": "K7QF-2MXD-9RTB",
        "device_name": "Redmi",
        "platform": "android",
        "app_version": "1.4.2",
        "protocol_version": 1,
    }
    assert sent.headers["X-Xuncha-Protocol"] == "1"
    assert sent.headers["X-Xuncha-App"] == "1.4.2"
    assert "Authorization" not in sent.headers
    assert client.device_id == DEVICE


def test_enrollment_refused(tmp_path: Path) -> None:
    from sync_protocol.client import EnrollmentError

    transport = ScriptedTransport().then(
        "/api/v1/devices/enroll", problem(401, "enrollment_code_invalid")
    )
    with pytest.raises(EnrollmentError) as info:
        SyncClient.enroll(tmp_path / "x.sqlite3", transport, "BAD", "d", "android", "1.4.2")
    assert info.value.code == "enrollment_code_invalid"


def test_enrollment_ignores_members_a_later_server_adds(tmp_path: Path) -> None:
    enrolled = example("enrollment.json")["response"]
    answer = {**enrolled, "user": {**enrolled["user"], "phone": "+86 138 0000 0000"}}
    transport = ScriptedTransport().then("/api/v1/devices/enroll", Response(201, {}, answer))
    with SyncClient.enroll(
        tmp_path / "x.sqlite3", transport, "K7QF-2MXD-9RTB", "Redmi", "android", "1.4.2"
    ) as client:
        assert client.device_id == DEVICE
    store = Store(tmp_path / "x.sqlite3")
    credentials = store.credentials()
    store.close()
    assert credentials is not None
    assert (credentials.user_id, credentials.username) == (12, "zhangwei")


def test_a_malformed_enrollment_answer_is_an_enrollment_error(tmp_path: Path) -> None:
    from sync_protocol.client import EnrollmentError

    enrolled = example("enrollment.json")["response"]
    answer = {**enrolled, "user": {**enrolled["user"], "id": "12"}}  # a known member, wrong type
    transport = ScriptedTransport().then("/api/v1/devices/enroll", Response(201, {}, answer))
    with pytest.raises(EnrollmentError) as info:
        SyncClient.enroll(tmp_path / "x.sqlite3", transport, "K", "d", "android", "1.4.2")
    assert info.value.code == "invalid_response" and "user.id" in info.value.message
    store = Store(tmp_path / "x.sqlite3")
    assert store.credentials() is None
    store.close()


def test_local_operations_validate_before_queueing(client: SyncClient) -> None:
    report_id = client.create_report("0504", "占道经营", "", LOCATION)
    with pytest.raises(MutationArgsError) as info:
        client.create_report("0504", "", "", LOCATION)
    assert info.value.code == "invalid_args"
    with pytest.raises(MutationArgsError):
        client.update_report(report_id, {"descripton": "typo"})
    with pytest.raises(KeyError):
        client.update_report("00000000-0000-4000-8000-000000000000", {"address": "x"})
    client.update_report(report_id, {"address": "新地址"})
    client.delete_report(report_id)
    pending = client.pending()
    assert [(p.id, p.name) for p in pending] == [
        (1, "report.create"),
        (2, "report.update"),
        (3, "report.delete"),
    ]
    create = pending[0].args
    assert create["captured_at"] == "2026-11-23T08:15:00+08:00"  # the device clock, with offset
    assert pending[0].client_time == "2026-11-23T08:15:00+08:00"
    assert pending[1].args["base_version"] == 1  # only pending: the create makes version 1


def test_base_version_comes_from_the_confirmed_record(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    report = "3f5c0d9e-7b7e-4d4b-9a53-3b1d1c7e9a10"
    transport.then("/api/v1/sync/pull", page([report_put(report, 4)], "c1.a"))
    client.pull()
    client.update_report(report, {"description": "补充说明"})
    assert client.pending()[0].args == {
        "report_id": report,
        "base_version": 4,
        "changes": {"description": "补充说明"},
    }


def test_the_outbox_survives_a_restart(tmp_path: Path, client: SyncClient) -> None:
    ids = add_reports(client, 3)
    client.close()
    reopened = SyncClient(tmp_path / "phone.sqlite3", ScriptedTransport(), "1.4.2")
    assert [p.args["report_id"] for p in reopened.pending()] == ids
    assert reopened.device_id == DEVICE
    reopened.create_report("0504", "又一个", "", LOCATION)
    assert [p.id for p in reopened.pending()] == [1, 2, 3, 4]
    reopened.close()


def test_an_oversized_mutation_is_refused_locally(tmp_path: Path) -> None:
    small = SyncClient(tmp_path / "s.sqlite3", ScriptedTransport(), "1.4.2", max_batch_bytes=500)
    with pytest.raises(ValueError, match="size limit"):
        small.create_report("0504", "x" * 400, "", LOCATION)
    assert small.pending() == []
    small.close()


# -- push ----------------------------------------------------------------------------------------


def test_push_splits_by_count(client: SyncClient, transport: ScriptedTransport) -> None:
    add_reports(client, 450)
    for _ in range(3):
        transport.then("/api/v1/sync/push", all_applied)
    outcome = client.push()
    assert outcome.state == SyncState.ok and outcome.remaining == 0
    bodies = [s.body for s in transport.sent if s.path == "/api/v1/sync/push"]
    assert [len(b["mutations"]) for b in bodies] == [200, 200, 50]
    ids = [m["id"] for b in bodies for m in b["mutations"]]
    assert ids == list(range(1, 451))
    for body in bodies:
        assert body["protocol_version"] == 1 and body["app_version"] == "1.4.2"
        assert body["device_id"] == DEVICE
    assert len(client.results_log()) == 450 and transport.done()


def test_push_splits_by_bytes(client: SyncClient, transport: ScriptedTransport) -> None:
    # 2000 CJK characters are ~6 KB of UTF-8: 200 of them exceed 1 MiB.
    add_reports(client, MAX_BATCH_MUTATIONS, description="张" * 2000)
    transport.then("/api/v1/sync/push", all_applied).then("/api/v1/sync/push", all_applied)
    assert client.push().state == SyncState.ok
    bodies = [s.body for s in transport.sent if s.path == "/api/v1/sync/push"]
    sizes = [len(encode_json(b)) for b in bodies]
    assert all(size <= MAX_BATCH_BYTES for size in sizes)
    assert sizes[0] > MAX_BATCH_BYTES - 7000  # the first batch is filled, not just halved
    assert sum(len(b["mutations"]) for b in bodies) == MAX_BATCH_MUTATIONS


def test_every_result_status(client: SyncClient, transport: ScriptedTransport) -> None:
    ids = add_reports(client, 8)
    statuses = {
        2: {
            "status": "applied",
            "record": {"entity": "report", "id": ids[1], "version": 2},
            "ignored_fields": ["status"],
        },
        3: {"status": "rejected", "code": "invalid_args", "message": "bad"},
        4: {
            "status": "conflict",
            "record": {"entity": "report", "id": ids[3], "version": 3},
            "fields": ["description"],
            "server": {"description": "theirs"},
        },
        5: {"status": "gone", "record": {"entity": "report", "id": ids[4], "version": 2}},
        6: {"status": "locked", "record": {"entity": "report", "id": ids[5], "version": 4}},
        7: {"status": "retry", "retry_after": 30},
    }
    transport.then("/api/v1/sync/push", lambda body: results_for(body, statuses))
    outcome = client.push()
    assert (outcome.state, outcome.retry_after, outcome.remaining) == (
        SyncState.retry_later,
        30,
        2,
    )
    assert [p.id for p in client.pending()] == [7, 8]  # the retry and everything after it
    log = {entry.mutation_id: entry.status for entry in client.results_log()}
    assert log == {
        1: "applied",
        2: "applied",
        3: "rejected",
        4: "conflict",
        5: "gone",
        6: "locked",
        7: "retry",
    }
    [conflict] = client.conflicts()
    assert (conflict.mutation_id, conflict.server) == (4, {"description": "theirs"})
    assert conflict.mine["report_id"] == ids[3]
    # Next time the retried mutation goes first.
    transport.then("/api/v1/sync/push", all_applied)
    assert client.push().state == SyncState.ok
    assert [m["id"] for m in transport.sent[-1].body["mutations"]] == [7, 8]


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (TransportError("connection refused"), SyncState.offline),
        (Response(502, {}, "<html>bad gateway</html>"), SyncState.retry_later),
        (problem(503, "database_unavailable"), SyncState.retry_later),
        (problem(422, "invalid_batch"), SyncState.failed),
        (problem(400, "unsupported_protocol", supported=[1]), SyncState.failed),
        # A directive type from a later protocol makes the problem unreadable: the answer is
        # then handled by its HTTP status alone.
        (
            problem(426, "upgrade_required", directives=[{"type": "self_destruct", "message": ""}]),
            SyncState.upgrade_required,
        ),
        (
            problem(503, "busy", directives=[{"type": "self_destruct", "message": ""}]),
            SyncState.retry_later,
        ),
    ],
)
def test_a_failed_request_keeps_everything(
    client: SyncClient, transport: ScriptedTransport, answer: Answer, state: SyncState
) -> None:
    add_reports(client, 3)
    before = client.pending()
    transport.then("/api/v1/sync/push", answer)
    outcome = client.push()
    assert outcome.state == state and outcome.remaining == 3
    assert client.pending() == before and client.results_log() == []


def test_a_lost_answer_is_resent_identically(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    add_reports(client, 2)
    transport.then("/api/v1/sync/push", TransportError("reset while reading"))
    transport.then("/api/v1/sync/push", all_applied)
    assert client.push().state == SyncState.offline
    assert client.push().state == SyncState.ok
    first, second = (s.body for s in transport.sent if s.path == "/api/v1/sync/push")
    assert first == second  # same ids, same content: the server can replay


def test_retry_after_header_is_reported(client: SyncClient, transport: ScriptedTransport) -> None:
    add_reports(client, 1)
    transport.then("/api/v1/sync/push", Response(503, {"retry-after": "12"}, None))
    assert client.push().retry_after == 12


def test_an_expired_token_is_refreshed_once(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    add_reports(client, 1)
    token = example("token-refresh.json")["response"]
    transport.then("/api/v1/sync/push", problem(401, "token_expired"))
    transport.then("/api/v1/devices/token", Response(200, {}, token))
    transport.then("/api/v1/sync/push", all_applied)
    assert client.push().state == SyncState.ok
    refresh, retried = transport.sent[-2:]
    assert refresh.body == {
        "device_id": DEVICE,
        "device_secret": example("enrollment.json")["response"]["device_secret"],
    }
    assert retried.headers["Authorization"] == f"Bearer {token['access_token']}"
    # A second refusal is not retried forever.
    add_reports(client, 1)
    transport.then("/api/v1/sync/push", problem(401, "invalid_token"))
    transport.then("/api/v1/devices/token", Response(200, {}, token))
    transport.then("/api/v1/sync/push", problem(401, "invalid_token"))
    outcome = client.push()
    assert (outcome.state, outcome.error, outcome.remaining) == (
        SyncState.failed,
        "invalid_token",
        1,
    )
    assert transport.done()


def test_the_token_is_refreshed_when_the_device_clock_says_it_expired(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    add_reports(client, 1)
    client._clock.now += timedelta(minutes=20)
    transport.then(
        "/api/v1/devices/token", Response(200, {}, example("token-refresh.json")["response"])
    )
    transport.then("/api/v1/sync/push", all_applied)
    assert client.push().state == SyncState.ok


def test_a_revoked_device_keeps_its_outbox(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    add_reports(client, 2)
    directive = {"type": "re_enroll", "message": "设备已停用，请重新登记"}
    transport.then("/api/v1/sync/push", problem(401, "device_revoked", directives=[directive]))
    outcome = client.push()
    assert (outcome.state, outcome.error, outcome.remaining) == (
        SyncState.re_enroll,
        "device_revoked",
        2,
    )
    assert [d.type for d in client.directives] == ["re_enroll"]


def test_re_enrolling_renumbers_the_outbox(
    tmp_path: Path, client: SyncClient, transport: ScriptedTransport
) -> None:
    add_reports(client, 3)
    transport.then(
        "/api/v1/sync/push", lambda b: results_for(b, {2: {"status": "retry", "retry_after": 1}})
    )
    client.push()  # 1 done; 2 and 3 wait
    client.close()
    again = example("enrollment.json")["response"]
    again["device_id"] = "0d4c6a1e-4a3d-4f0e-8b7a-2c5d9e1f3a41"
    transport.then("/api/v1/devices/enroll", Response(201, {}, again))
    client = SyncClient.enroll(
        tmp_path / "phone.sqlite3", transport, "NEW-CODE", "Redmi", "android", "1.4.2"
    )
    assert [p.id for p in client.pending()] == [1, 2]
    other_user = {**again, "device_id": DEVICE, "user": {**again["user"], "id": 99}}
    transport.then("/api/v1/devices/enroll", Response(201, {}, other_user))
    from sync_protocol.client import EnrollmentError

    with pytest.raises(EnrollmentError, match="another user"):
        SyncClient.enroll(tmp_path / "phone.sqlite3", transport, "C", "d", "android", "1.4.2")
    client.close()


def test_a_gap_after_server_data_loss_resends_from_expected_id(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    add_reports(client, 3)
    transport.then("/api/v1/sync/push", all_applied)
    client.push()  # 1..3 processed and dropped from the outbox
    add_reports(client, 1)
    # The server was restored from a backup taken after mutation 1: it expects 2.
    transport.then("/api/v1/sync/push", problem(409, "mutation_gap", expected_id=2))
    transport.then("/api/v1/sync/push", all_applied)
    outcome = client.push()
    assert outcome.state == SyncState.ok and client.pending() == []
    original = transport.sent[1].body["mutations"]
    resent = transport.sent[-1].body["mutations"]
    assert [m["id"] for m in resent] == [2, 3, 4]
    assert resent[:2] == original[1:]  # same ids, same content


@pytest.mark.parametrize("expected_id", [5, 9])
def test_a_contradictory_gap_drops_nothing(
    client: SyncClient, transport: ScriptedTransport, expected_id: int
) -> None:
    """A gap whose expected id is not below our first id cannot come from a correct server."""
    add_reports(client, 3)
    transport.then("/api/v1/sync/push", problem(409, "mutation_gap", expected_id=expected_id))
    outcome = client.push()
    assert (outcome.state, outcome.error, outcome.remaining) == (
        SyncState.failed,
        "mutation_gap",
        3,
    )


def test_an_unrecoverable_gap_is_reported(client: SyncClient, transport: ScriptedTransport) -> None:
    add_reports(client, 2)
    transport.then("/api/v1/sync/push", all_applied)
    client.push()
    add_reports(client, 1)
    with client._store.transaction() as db:  # the log of 1..2 is lost too
        db.execute("DELETE FROM results")
    transport.then("/api/v1/sync/push", problem(409, "mutation_gap", expected_id=1))
    outcome = client.push()
    assert (outcome.state, outcome.error) == (SyncState.failed, "mutation_gap_unrecoverable")
    assert [p.id for p in client.pending()] == [3]


def test_413_halves_the_batch(client: SyncClient, transport: ScriptedTransport) -> None:
    add_reports(client, 10)
    transport.then("/api/v1/sync/push", problem(413, "batch_too_large"))
    transport.then("/api/v1/sync/push", all_applied).then("/api/v1/sync/push", all_applied)
    assert client.push().state == SyncState.ok
    sizes = [len(s.body["mutations"]) for s in transport.sent if s.path == "/api/v1/sync/push"]
    assert sizes == [10, 5, 5]


@pytest.mark.parametrize(
    "bad",
    [
        lambda body: Response(200, {}, {"results": []}),  # not a push response
        lambda body: results_for({**body, "mutations": body["mutations"][1:]}),  # misaligned
        lambda body: results_for({**body, "mutations": body["mutations"][:1]}),  # cut short
    ],
)
def test_an_answer_that_does_not_match_the_batch_changes_nothing(
    client: SyncClient, transport: ScriptedTransport, bad: Callable[[dict[str, Any]], Response]
) -> None:
    add_reports(client, 3)
    transport.then("/api/v1/sync/push", bad)
    outcome = client.push()
    assert (outcome.state, outcome.error, outcome.remaining) == (
        SyncState.failed,
        "invalid_response",
        3,
    )
    assert client.results_log() == []


def test_push_answers_may_carry_members_a_later_server_adds(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    def answer(body: dict[str, Any]) -> Response:
        response = results_for(body, shard="hz-2")
        assert isinstance(response.body, dict)
        for result in response.body["results"]:
            result["took_ms"] = 3
            result["record"]["etag"] = "W/1"
        response.body["directives"] = [
            {"type": "upgrade_recommended", "message": "1.5", "channel": "beta"}
        ]
        return response

    ids = add_reports(client, 2)
    transport.then("/api/v1/sync/push", answer)
    outcome = client.push()
    assert (outcome.state, outcome.remaining) == (SyncState.ok, 0)
    assert [r.record.id for r in outcome.results if r.record] == ids
    assert [d.message for d in outcome.directives] == ["1.5"]


@pytest.mark.parametrize(
    "future",
    [
        lambda body: results_for(body, {2: {"status": "deferred"}}),  # a later result status
        lambda body: results_for(body, directives=[{"type": "self_destruct", "message": ""}]),
    ],
)
def test_an_unknown_value_fails_the_push_and_keeps_the_outbox(
    client: SyncClient, transport: ScriptedTransport, future: Callable[[dict[str, Any]], Response]
) -> None:
    """Unknown values are errors (unlike unknown members): the step fails, nothing is lost, and
    the next push re-sends the same mutations, which the server answers by replaying."""
    add_reports(client, 3)
    before = client.pending()
    transport.then("/api/v1/sync/push", future)
    outcome = client.push()
    assert (outcome.state, outcome.error, outcome.remaining) == (
        SyncState.failed,
        "invalid_response",
        3,
    )
    assert client.pending() == before and client.results_log() == []
    assert client.directives == []
    transport.then("/api/v1/sync/push", all_applied)
    assert client.push().state == SyncState.ok
    first, second = (s.body for s in transport.sent if s.path == "/api/v1/sync/push")
    assert first == second


def test_gone_removes_the_local_record(client: SyncClient, transport: ScriptedTransport) -> None:
    report = "3f5c0d9e-7b7e-4d4b-9a53-3b1d1c7e9a10"
    transport.then("/api/v1/sync/pull", page([report_put(report, 2)], "c1.a"))
    client.pull()
    client.update_report(report, {"address": "x"})
    transport.then("/api/v1/sync/push", lambda b: results_for(b, {1: {"status": "gone"}}))
    client.push()
    assert client.records("report") == {}


# -- pull ----------------------------------------------------------------------------------------


def test_first_pull_from_the_golden_example(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    first = example("first-pull.json")
    transport.then("/api/v1/sync/pull", Response(200, {}, first["response"]))
    outcome = client.pull()
    assert (outcome.state, outcome.pages, outcome.changes, outcome.digest_verified) == (
        SyncState.ok,
        1,
        2,
        True,
    )
    assert transport.sent[-1].body == first["request"]
    assert transport.sent[-1].headers["Authorization"].startswith("Bearer xat1.")
    assert set(client.records("grid")) == {"99010100200934"}
    assert client.digest() == (first["response"]["digest"], 2)


def test_pull_pages_until_done_and_persists_each_page(
    tmp_path: Path, client: SyncClient, transport: ScriptedTransport
) -> None:
    a, b = "aaaaaaaa-0000-4000-8000-000000000000", "bbbbbbbb-0000-4000-8000-000000000000"
    transport.then("/api/v1/sync/pull", page([report_put(a, 1)], "c1.p1", has_more=True))
    transport.then("/api/v1/sync/pull", TransportError("tunnel"))
    assert client.pull().state == SyncState.offline
    client.close()
    # Page 1 and its cursor survived; the next pull continues from there.
    client = SyncClient(tmp_path / "phone.sqlite3", transport, "1.4.2", clock=Clock())
    assert set(client.records("report")) == {a}
    digest, count = digest_of([("report", a, 1), ("report", b, 3)])
    transport.then(
        "/api/v1/sync/pull",
        page([report_put(b, 3), report_put(a, 1)], "c1.p2", digest=digest, record_count=count),
    )
    outcome = client.pull()
    assert outcome.state == SyncState.ok and outcome.digest_verified
    assert transport.sent[-1].body["cursor"] == "c1.p1"
    assert set(client.records("report")) == {a, b}
    client.close()


def test_pull_pages_may_carry_members_a_later_server_adds(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    a = "aaaaaaaa-0000-4000-8000-000000000000"
    change = {**report_put(a, 1, address="x"), "changed_by": "web"}
    transport.then("/api/v1/sync/pull", page([change], "c1.p1", took_ms=7))
    assert client.pull().state == SyncState.ok
    # Unknown members of a change are dropped; the record's own data is kept as sent.
    assert client.records("report") == {a: {"id": a, "version": 1, "address": "x"}}


def test_an_unknown_change_op_fails_the_pull_and_keeps_cursor_and_outbox(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    a, b = "aaaaaaaa-0000-4000-8000-000000000000", "bbbbbbbb-0000-4000-8000-000000000000"
    add_reports(client, 1)
    before = client.pending()
    future = {"entity": "report", "id": b, "op": "patch", "version": 2, "data": {}}
    transport.then("/api/v1/sync/pull", page([report_put(a, 1)], "c1.p1", has_more=True))
    transport.then("/api/v1/sync/pull", page([future], "c1.p2"))
    outcome = client.pull()
    assert (outcome.state, outcome.error, outcome.pages) == (
        SyncState.failed,
        "invalid_response",
        1,
    )
    assert set(client.records("report")) == {a} and client.pending() == before
    # The refused page was not applied: the next pull asks for it again.
    transport.then("/api/v1/sync/pull", page([], "c1.p2"))
    assert client.pull().state == SyncState.ok
    assert transport.sent[-1].body["cursor"] == "c1.p1"


def test_reset_drops_records_keeps_outbox_and_restarts_from_null(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    report = "3f5c0d9e-7b7e-4d4b-9a53-3b1d1c7e9a10"
    transport.then("/api/v1/sync/pull", page([report_put(report, 1)], "c1.old"))
    client.pull()
    add_reports(client, 2)
    reset = example("pull-reset.json")["response"]
    transport.then("/api/v1/sync/pull", Response(200, {}, reset))
    digest, count = digest_of([("report", report, 2)])
    transport.then(
        "/api/v1/sync/pull",
        page([report_put(report, 2)], "c1.new", digest=digest, record_count=count),
    )
    outcome = client.pull()
    assert (outcome.state, outcome.resets) == (SyncState.ok, 1)
    cursors = [s.body["cursor"] for s in transport.sent if s.path == "/api/v1/sync/pull"]
    assert cursors == [None, "c1.old", None]
    assert len(client.pending()) == 2  # never the outbox
    assert client.records("report")[report]["version"] == 2


def test_a_digest_mismatch_resets_and_a_persistent_one_stops(
    client: SyncClient, transport: ScriptedTransport
) -> None:
    report = "3f5c0d9e-7b7e-4d4b-9a53-3b1d1c7e9a10"
    wrong = page([report_put(report, 1)], "c1.x", digest="0" * 31 + "1", record_count=1)
    for _ in range(3):
        transport.then("/api/v1/sync/pull", wrong)
    outcome = client.pull()
    assert (outcome.state, outcome.error, outcome.resets) == (
        SyncState.failed,
        "reset_loop",
        3,
    )
    assert client.records("report") == {}  # the diverged copy is not kept


def test_too_old_app_is_told_to_upgrade(client: SyncClient, transport: ScriptedTransport) -> None:
    upgrade = example("upgrade-required-pull.json")["response"]
    transport.then("/api/v1/sync/pull", Response(426, {}, upgrade))
    outcome = client.pull()
    assert (outcome.state, outcome.error) == (SyncState.upgrade_required, "upgrade_required")
    assert [d.min_app_version for d in client.directives] == ["1.3.0"]


def test_directives_are_remembered_across_restarts(
    tmp_path: Path, client: SyncClient, transport: ScriptedTransport
) -> None:
    add_reports(client, 1)
    directive = {"type": "upgrade_recommended", "message": "建议升级", "min_app_version": "1.5.0"}
    transport.then("/api/v1/sync/push", lambda b: results_for(b, directives=[directive]))
    client.push()
    client.close()
    reopened = SyncClient(tmp_path / "phone.sqlite3", transport, "1.4.2")
    assert [d.to_json() for d in reopened.directives] == [directive]
    reopened.close()


def test_sync_pushes_then_pulls(client: SyncClient, transport: ScriptedTransport) -> None:
    [report] = add_reports(client, 1)
    transport.then("/api/v1/sync/push", all_applied)
    transport.then("/api/v1/sync/pull", page([report_put(report, 1)], "c1.a"))
    outcome = client.sync()
    assert outcome.push.state == outcome.pull.state == SyncState.ok
    assert [s.path for s in transport.sent[1:]] == ["/api/v1/sync/push", "/api/v1/sync/pull"]
    assert report in client.records("report")
    # Offline: no pull is attempted after a push that could not reach the server.
    add_reports(client, 1)
    transport.then("/api/v1/sync/push", TransportError("no signal"))
    assert client.sync().pull is None


def test_not_enrolled(tmp_path: Path) -> None:
    with SyncClient(tmp_path / "n.sqlite3", ScriptedTransport(), "1.4.2") as fresh:
        fresh.create_report("0504", "离线也能记录", "", LOCATION)
        assert fresh.push().state == SyncState.not_enrolled
        assert fresh.pull().state == SyncState.not_enrolled
        assert len(fresh.pending()) == 1


def test_store_is_plain_sqlite(tmp_path: Path, client: SyncClient) -> None:
    add_reports(client, 1)
    client.close()
    store = Store(tmp_path / "phone.sqlite3")
    assert len(store.outbox()) == 1
    store.close()
