"""The reference client's SQLite store: durable across close, reopen and abrupt exits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sync_protocol.messages import (
    Change,
    Directive,
    DirectiveType,
    MutationResult,
    RecordRef,
    ResultStatus,
)
from sync_protocol.store import Store

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "9b2f6c1e-4a3d-4f0e-8b7a-2c5d9e1f3a40"
T = "2026-11-23T08:00:00+08:00"


def put(entity: str, id: str, version: int, **data: object) -> Change:
    return Change(entity=entity, id=id, op="put", version=version, data={"v": version, **data})


def delete(entity: str, id: str, version: int) -> Change:
    return Change(entity=entity, id=id, op="delete", version=version, reason="deleted")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "client.sqlite3"


def test_everything_survives_close_and_reopen(path: Path) -> None:
    store = Store(path)
    store.adopt_device(DEVICE, "xds1.secret", 12, "zhangwei", "xat1.token", T)
    ids = [store.enqueue("report.create", {"n": i, "text": "张伟"}, T, T) for i in range(3)]
    store.apply_page([put("grid", "g1", 1), put("report", "r1", 2)], "c1.page1", 4)
    store.save_directives([Directive(DirectiveType.upgrade_recommended, "升级", "1.5.0")])
    digest = store.digest()
    store.close()

    again = Store(path)
    credentials = again.credentials()
    assert credentials is not None
    assert (credentials.device_id, credentials.device_secret, credentials.access_token) == (
        DEVICE,
        "xds1.secret",
        "xat1.token",
    )
    assert ids == [1, 2, 3]
    assert [(e.id, e.args) for e in again.outbox()] == [
        (i, {"n": i - 1, "text": "张伟"}) for i in ids
    ]
    assert again.next_mutation_id() == 4
    assert again.cursor() == "c1.page1"
    assert again.server_last_mutation_id() == 4
    assert again.records("report") == {"r1": {"v": 2}}
    assert again.digest() == digest
    assert again.directives()[0].type == DirectiveType.upgrade_recommended
    again.close()


def test_the_file_uses_wal_and_full_sync(path: Path) -> None:
    store = Store(path)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_a_mutation_survives_an_abrupt_exit(path: Path) -> None:
    """Enqueue in another process that dies without closing anything."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from sync_protocol.store import Store
        store = Store({str(path)!r})
        store.enqueue("report.create", {{"n": 1}}, None, "t")
        store.enqueue("report.create", {{"n": 2}}, None, "t")
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = Store(path)
    assert [e.args for e in store.outbox()] == [{"n": 1}, {"n": 2}]
    assert store.enqueue("report.create", {"n": 3}, None, "t") == 3
    store.close()


def test_numbers_are_never_reused(path: Path) -> None:
    store = Store(path)
    first = store.enqueue("a", {}, None, T)
    entry = store.outbox()[0]
    result = MutationResult(id=first, status=ResultStatus.rejected, code="invalid_args")
    store.record_results(DEVICE, [(entry, result)], {}, first, T)
    assert store.outbox() == []
    assert store.enqueue("a", {}, None, T) == 2  # an empty outbox does not restart at 1
    store.close()


def test_a_failed_transaction_changes_nothing(path: Path) -> None:
    store = Store(path)
    store.enqueue("a", {}, None, T)
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("DELETE FROM outbox")
        db.execute("UPDATE sync_state SET next_mutation_id = 99")
        raise RuntimeError("crash halfway")
    assert len(store.outbox()) == 1 and store.next_mutation_id() == 2
    store.close()


def test_results_leave_the_outbox_with_their_log_entry(path: Path) -> None:
    store = Store(path)
    for i in range(4):
        store.enqueue("report.update", {"report_id": f"r{i}"}, T, T)
    store.apply_page([put("report", "r2", 1)], "c", 0)
    entries = store.outbox()
    results = [
        MutationResult(id=1, status=ResultStatus.applied, record=RecordRef("report", "r0", 2)),
        MutationResult(
            id=2,
            status=ResultStatus.conflict,
            record=RecordRef("report", "r1", 3),
            fields=("description",),
            server={"description": "theirs"},
        ),
        MutationResult(id=3, status=ResultStatus.gone),
        MutationResult(id=4, status=ResultStatus.retry, retry_after=5),
    ]
    store.record_results(
        DEVICE, list(zip(entries, results, strict=True)), {"report.update": "report"}, 3, T
    )
    assert [e.id for e in store.outbox()] == [4]  # retry keeps its mutation
    assert store.records("report") == {}  # gone removed r2 locally
    assert store.server_last_mutation_id() == 3
    store.adopt_device(DEVICE, "s", 1, "u", "t", T)  # the log is per device
    store.record_results(
        DEVICE, list(zip(entries, results, strict=True)), {"report.update": "report"}, 3, T
    )
    log = store.results_log()
    assert [(r.mutation_id, r.status) for r in log] == [
        (1, "applied"),
        (2, "conflict"),
        (3, "gone"),
        (4, "retry"),
    ]
    assert log[1].result == results[1]
    conflicts = store.conflicts()
    assert [(c.mutation_id, c.record_id, c.fields, c.server) for c in conflicts] == [
        (2, "r1", ["description"], {"description": "theirs"})
    ]
    assert conflicts[0].mine == {"report_id": "r1"}
    assert store.archived(DEVICE, 1, 3) is not None
    assert store.archived(DEVICE, 1, 9) is None
    store.close()


def test_pages_apply_by_version(path: Path) -> None:
    store = Store(path)
    store.apply_page([put("report", "a", 3), put("report", "b", 1)], "c1", 0)
    store.apply_page([put("report", "a", 2, stale=True), put("report", "b", 2)], "c2", 0)
    assert store.records("report") == {"a": {"v": 3}, "b": {"v": 2}}
    store.apply_page([put("report", "a", 3, again=True)], "c3", 0)  # same version: no change
    assert store.records("report")["a"] == {"v": 3}
    store.apply_page([delete("report", "a", 1)], "c4", 0)  # delete whatever the version
    assert set(store.records("report")) == {"b"}
    assert store.cursor() == "c4"
    store.close()


def test_reset_drops_records_and_cursor_but_never_the_outbox(path: Path) -> None:
    store = Store(path)
    store.enqueue("a", {"x": 1}, None, T)
    store.apply_page([put("grid", "g", 1)], "c1", 0)
    store.reset_records()
    assert (store.records("grid"), store.cursor()) == ({}, None)
    assert [e.args for e in store.outbox()] == [{"x": 1}]
    store.close()


def test_a_new_device_renumbers_the_outbox_from_one(path: Path) -> None:
    store = Store(path)
    store.adopt_device(DEVICE, "s", 12, "u", "t", T)
    for i in range(5):
        store.enqueue("a", {"n": i}, None, T)
    entries = store.outbox()[:2]
    done = [MutationResult(id=e.id, status=ResultStatus.rejected, code="x") for e in entries]
    store.record_results(DEVICE, list(zip(entries, done, strict=True)), {}, 2, T)
    store.apply_page([put("grid", "g", 1)], "c", 2)
    store.adopt_device("0d4c6a1e-4a3d-4f0e-8b7a-2c5d9e1f3a41", "s2", 12, "u", "t2", T)
    assert [(e.id, e.args["n"]) for e in store.outbox()] == [(1, 2), (2, 3), (3, 4)]
    assert store.next_mutation_id() == 4
    assert (store.cursor(), store.records("grid"), store.server_last_mutation_id()) == (None, {}, 0)
    assert store.results_log() == []  # the old device's log is not this device's
    # The same device again (e.g. credentials re-saved) renumbers nothing.
    store.adopt_device("0d4c6a1e-4a3d-4f0e-8b7a-2c5d9e1f3a41", "s2", 12, "u", "t3", T)
    assert [e.id for e in store.outbox()] == [1, 2, 3]
    store.close()
