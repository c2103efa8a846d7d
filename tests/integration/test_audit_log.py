"""The audit log on both databases: what is recorded, and that every kind of tampering —
altered, removed, inserted entries, a cut-off tail — is detected."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update

from backend.accounts.models import Role
from backend.audit.chain import GENESIS
from backend.audit.models import AuditEntry, AuditHead
from backend.audit.service import WrongAuditKey, audit_key, chain_parked, record, verify_log
from backend.core.db import transaction
from backend.jobs.worker import Periodic
from tests.support.apps import ApiHarness


def _verify(api: ApiHarness, expect: str | None = None) -> Any:
    with transaction(api.runtime.read_sessions) as session:
        return verify_log(session, audit_key(api.runtime.settings), expect)


def _actions(api: ApiHarness) -> list[str]:
    with transaction(api.runtime.read_sessions) as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))


def _fill(api: ApiHarness, count: int) -> None:
    with transaction(api.runtime.sessions) as session:
        for i in range(count):
            record(session, "tester", "test.event", "thing", i, n=i, text="整改")


def test_logins_enrollments_and_changes_are_recorded(api: ApiHarness) -> None:
    admin = api.token_for("chief", Role.admin)  # creates the user, then logs in
    created = api.client.post(
        "/api/v1/users",
        json={"username": "zhang", "password": "long-enough-pw", "role": "inspector"},
        headers=admin,
    ).json()
    code = api.client.post(f"/api/v1/users/{created['id']}/enrollment-codes", headers=admin)
    enrolled = api.client.post(
        "/api/v1/devices/enroll",
        json={
            "code": code.json()["code"],
            "device_name": "phone",
            "platform": "android",
            "app_version": "1.0.0",
        },
    )
    assert enrolled.status_code == 201, enrolled.text
    api.client.post(f"/api/v1/devices/{enrolled.json()['device_id']}/revoke", headers=admin)
    api.client.post(f"/api/v1/users/{created['id']}/deactivate", headers=admin)
    assert _actions(api) == [
        "user.create",
        "auth.login",
        "user.create",
        "enrollment_code.create",
        "device.enroll",
        "device.revoke",
        "user.deactivate",
    ]
    with transaction(api.runtime.read_sessions) as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert last is not None and last.actor == "chief" and last.subject_id == str(created["id"])
    result = _verify(api)
    assert result.ok and result.entries == 7 and result.head[0] == 7


def test_an_altered_entry_is_detected(api: ApiHarness) -> None:
    _fill(api, 5)
    assert _verify(api).ok
    with transaction(api.runtime.sessions) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="someone"))
    problems = _verify(api).problems
    assert [(p.seq, p.kind) for p in problems] == [(3, "altered")]


def test_a_removed_entry_is_detected(api: ApiHarness) -> None:
    _fill(api, 5)
    with transaction(api.runtime.sessions) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    kinds = {(p.seq, p.kind) for p in _verify(api).problems}
    assert (3, "gap") in kinds and (3, "broken_link") in kinds


def test_an_inserted_entry_is_detected(api: ApiHarness) -> None:
    _fill(api, 4)
    with transaction(api.runtime.sessions) as session:
        # Make room and slip a forged entry in, chained to its predecessor's real hash.
        session.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(seq=5))
        third = session.get(AuditEntry, 3)
        assert third is not None
        session.add(
            AuditEntry(
                seq=4,
                at=third.at,
                actor="tester",
                action="report.status",
                subject_type="report",
                subject_id="x",
                details={"after": "closed"},
                prev_hash=third.hash,
                hash="f" * 64,  # without the key no valid hash can be made
            )
        )
    kinds = {(p.seq, p.kind) for p in _verify(api).problems}
    assert (4, "altered") in kinds and (5, "broken_link") in kinds and (5, "altered") in kinds


def test_a_cut_off_tail_is_detected_by_the_head(api: ApiHarness) -> None:
    _fill(api, 5)
    recorded = _verify(api).head
    with transaction(api.runtime.sessions) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
    assert [p.kind for p in _verify(api).problems] == ["head_mismatch"]
    # Rewinding the head as well hides it from the log itself, not from a copied head.
    with transaction(api.runtime.sessions) as session:
        third = session.get(AuditEntry, 3)
        assert third is not None
        session.execute(update(AuditHead).values(seq=3, hash=third.hash))
    assert _verify(api).ok
    copied = f"{recorded[0]}:{recorded[1]}"
    assert [p.kind for p in _verify(api, copied).problems] == ["head_mismatch"]


def test_concurrent_appends_keep_one_chain(api: ApiHarness) -> None:
    errors: list[BaseException] = []

    def append() -> None:
        try:
            _fill(api, 10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    _chain_parked(api)  # on PostgreSQL, commits that found the head busy parked theirs
    result = _verify(api)
    assert result.ok and result.entries == 60 and result.head[0] == 60 and result.parked == 0


def _chain_parked(api: ApiHarness) -> int:
    with transaction(api.runtime.sessions) as session:
        return chain_parked(session, audit_key(api.runtime.settings))


def _park_three_behind_a_held_head(api: ApiHarness) -> None:
    """Another transaction holds the head while three entries commit: they must not wait."""
    holder = api.runtime.sessions()
    try:
        holder.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        writer = threading.Thread(target=_fill, args=(api, 3))
        writer.start()
        writer.join(20)
        assert not writer.is_alive(), "a commit waited for the audit head"
    finally:
        holder.rollback()
        holder.close()


# SQLite has one writer at a time anyway: the head is never busy there, nothing is parked.
production_only = pytest.mark.parametrize("api", ["production"], indirect=True)


@production_only
def test_a_commit_parks_its_entries_instead_of_waiting_for_a_busy_head(api: ApiHarness) -> None:
    _park_three_behind_a_held_head(api)
    parked = _verify(api)
    assert parked.ok and parked.entries == 0 and parked.parked == 3
    # The next commit that gets the head chains the parked entries before its own.
    with transaction(api.runtime.sessions) as session:
        record(session, "tester", "test.later", "thing", 99)
    result = _verify(api)
    assert result.ok and result.entries == 4 and result.parked == 0
    assert _actions(api) == ["test.event"] * 3 + ["test.later"]


@production_only
def test_the_workers_sweep_chains_parked_entries(api: ApiHarness) -> None:
    _park_three_behind_a_held_head(api)
    Periodic(audit_every_s=0)._chain_audit(api.runtime)
    result = _verify(api)
    assert result.ok and result.entries == 3 and result.parked == 0
    assert _chain_parked(api) == 0  # nothing left; and no lock was needed to find that out


def test_an_empty_log_verifies(api: ApiHarness) -> None:
    with transaction(api.runtime.read_sessions) as session:
        assert session.execute(text("SELECT seq, hash FROM audit_head")).one() == (0, GENESIS)
    assert _verify(api).ok and _verify(api).entries == 0


@production_only
def test_parked_entries_are_not_chained_with_another_key(api: ApiHarness) -> None:
    _fill(api, 1)  # a chained entry, made with the service's key
    _park_three_behind_a_held_head(api)
    with pytest.raises(WrongAuditKey), transaction(api.runtime.sessions) as session:
        chain_parked(session, b"a key the chain was not made with".ljust(32, b"!"))
    result = _verify(api)
    assert result.ok and result.entries == 1 and result.parked == 3


def test_a_push_chains_its_entries_once_at_commit_not_per_savepoint(api: ApiHarness) -> None:
    with transaction(api.runtime.sessions) as session:
        for i in range(3):
            with session.begin_nested():
                record(session, "tester", "test.nested", "thing", i)
            # The savepoint's commit appended nothing yet: still queued for the outer commit.
            assert session.query(AuditEntry).count() == 0
    result = _verify(api)
    assert result.ok and result.entries == 3 and result.parked == 0
