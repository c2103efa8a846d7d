"""Conflict rules of docs/sync-protocol.md 4.3: a table, and properties of merging."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.conflicts import (
    MergeOutcome,
    State,
    bump_field_versions,
    check_delete,
    merge_update,
)
from sync_protocol.mutations import CLIENT_FIELDS, SERVER_OWNED_FIELDS

OWNED = frozenset(SERVER_OWNED_FIELDS)
# A report at version 5: description last changed in 4, address in 2, category at creation.
VERSIONS = {"category_code": 1, "description": 4, "address": 2, "location": 1}
VALUES = {
    "category_code": "0504",
    "description": "server text",
    "address": "88 号",
    "location": "L",
}

# (case, base_version, changes, state, kind, apply, conflicting, ignored)
TABLE: list[tuple[str, int, dict[str, Any], State, str, dict[str, Any], tuple[str, ...],
                  tuple[str, ...]]] = [
    ("untouched field merges", 3, {"category_code": "0301"}, "open", "applied",
     {"category_code": "0301"}, (), ()),
    ("field changed after base conflicts", 3, {"description": "mine"}, "open", "conflict",
     {}, ("description",), ()),
    ("field changed exactly at base is seen", 4, {"description": "mine"}, "open", "applied",
     {"description": "mine"}, (), ()),
    ("same value as the server is no conflict", 3, {"description": "server text"}, "open",
     "noop", {}, (), ()),
    ("one conflicting field blocks the whole edit", 3,
     {"category_code": "0301", "description": "mine"}, "open", "conflict", {},
     ("description",), ()),
    ("unchanged values are dropped from apply", 3,
     {"category_code": "0301", "address": "88 号"}, "open", "applied",
     {"category_code": "0301"}, (), ()),
    ("server-owned fields are ignored", 5, {"status": "closed", "address": "90 号"}, "open",
     "applied", {"address": "90 号"}, (), ("status",)),
    ("only server-owned fields: a successful no-op", 1, {"status": "closed", "assignee": "x"},
     "open", "noop", {}, (), ("assignee", "status")),
    ("deleted report is gone", 5, {"address": "x"}, "deleted", "gone", {}, (), ()),
    ("closed report is locked", 5, {"address": "x"}, "closed", "locked", {}, (), ()),
    ("gone beats conflict", 1, {"description": "mine"}, "deleted", "gone", {}, (), ()),
    ("base from the future conflicts on every changed field", 9,
     {"category_code": "0301", "address": "88 号"}, "open", "conflict", {},
     ("category_code",), ()),
    ("base from the future with nothing changed is a no-op", 9, {"address": "88 号"}, "open",
     "noop", {}, (), ()),
    ("an edit on an older base conflicts too", 1, {"address": "new"}, "open", "conflict", {},
     ("address",), ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "changes", "state", "kind", "apply", "conflicting", "ignored"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_merge_table(
    base: int,
    changes: dict[str, Any],
    state: State,
    kind: str,
    apply: dict[str, Any],
    conflicting: tuple[str, ...],
    ignored: tuple[str, ...],
) -> None:
    outcome = merge_update(5, VERSIONS, VALUES, base, changes, OWNED, state)
    assert outcome == MergeOutcome(kind, apply, conflicting, ignored)


def test_a_field_missing_from_current_values_is_a_change() -> None:
    outcome = merge_update(2, {}, {}, 2, {"address": "x"}, OWNED, "open")
    assert outcome == MergeOutcome("applied", {"address": "x"})


def test_own_earlier_edits_do_not_conflict() -> None:
    # The device edited the description twice while offline, both on base 3; its first edit
    # made version 4. Without own_versions the second edit would conflict with the first.
    strict = merge_update(5, VERSIONS, VALUES, 3, {"description": "again"}, OWNED, "open")
    assert strict.kind == "conflict"
    own = merge_update(
        5, VERSIONS, VALUES, 3, {"description": "again"}, OWNED, "open", own_versions={4}
    )
    assert own == MergeOutcome("applied", {"description": "again"})
    # Someone else's change still conflicts.
    other = merge_update(
        5, VERSIONS, VALUES, 3, {"description": "again"}, OWNED, "open", own_versions={5}
    )
    assert other.kind == "conflict"


def test_base_version_must_be_positive() -> None:
    with pytest.raises(ValueError):
        merge_update(1, {}, {}, 0, {"address": "x"}, OWNED, "open")
    with pytest.raises(ValueError):
        check_delete(1, 0, "open")


@pytest.mark.parametrize(
    ("current", "base", "state", "own", "expected"),
    [
        (3, 3, "open", (), "applied"),
        (3, 2, "open", (), "conflict"),
        (3, 4, "open", (), "conflict"),
        (3, 3, "deleted", (), "gone"),
        (3, 3, "closed", (), "locked"),
        (3, 2, "deleted", (), "gone"),
        (5, 3, "open", (4, 5), "applied"),  # the device's own edits in between
        (5, 3, "open", (4,), "conflict"),  # version 5 was someone else's
    ],
)
def test_delete_table(
    current: int, base: int, state: State, own: tuple[int, ...], expected: str
) -> None:
    assert check_delete(current, base, state, own_versions=own) == expected


def test_bump_field_versions() -> None:
    assert bump_field_versions({"a": 1, "b": 2}, ["b", "c"], 7) == {"a": 1, "b": 7, "c": 7}


# -- properties ---------------------------------------------------------------------------------


@dataclass
class Report:
    """A server-side report reduced to what the rules read and write."""

    version: int
    values: dict[str, Any]
    field_versions: dict[str, int] = field(default_factory=dict)

    def update(self, base: int, changes: dict[str, Any]) -> MergeOutcome:
        outcome = merge_update(
            self.version, self.field_versions, self.values, base, changes, OWNED, "open"
        )
        if outcome.kind == "applied":
            self.version += 1
            self.values.update(outcome.apply)
            self.field_versions = bump_field_versions(
                self.field_versions, outcome.apply, self.version
            )
        return outcome


values = st.integers(0, 3)
client_fields = st.sampled_from(CLIENT_FIELDS)


Edit = tuple[int, dict[str, Any]]  # (base_version, changes)


@st.composite
def two_disjoint_edits(draw: st.DrawFn) -> tuple[Report, Edit, Edit]:
    """Two devices, each on its own base version, editing disjoint sets of fields."""
    version = draw(st.integers(1, 6))
    report = Report(
        version,
        {f: draw(values) for f in CLIENT_FIELDS},
        {f: draw(st.integers(1, version)) for f in CLIENT_FIELDS},
    )
    names = draw(st.permutations(CLIENT_FIELDS))
    split = draw(st.integers(1, len(names) - 1))
    edits = []
    for fields in (names[:split], names[split:]):
        base = draw(st.integers(1, version))
        changes = {f: draw(values) for f in fields}
        # Each device edits fields nobody touched after its own base.
        for f in fields:
            report.field_versions[f] = min(report.field_versions[f], base)
        if draw(st.booleans()):
            changes["status"] = "closed"  # server-owned noise changes nothing
        edits.append((base, changes))
    return report, edits[0], edits[1]


@given(two_disjoint_edits())
def test_disjoint_edits_from_two_bases_commute(case: tuple[Report, Edit, Edit]) -> None:
    report, (base_a, a), (base_b, b) = case
    first = Report(report.version, dict(report.values), dict(report.field_versions))
    second = Report(report.version, dict(report.values), dict(report.field_versions))
    kinds_ab = (first.update(base_a, a).kind, first.update(base_b, b).kind)
    kinds_ba = (second.update(base_b, b).kind, second.update(base_a, a).kind)
    assert set(kinds_ab) | set(kinds_ba) <= {"applied", "noop"}  # both edits survive
    assert first.values == second.values
    expected = {**report.values, **{k: v for k, v in {**a, **b}.items() if k in CLIENT_FIELDS}}
    assert first.values == expected
    assert first.version == second.version


@given(st.integers(1, 5), client_fields, values, values, values)
def test_same_field_edits_conflict_unless_equal(
    version: int, name: str, old: int, mine: int, theirs: int
) -> None:
    report = Report(version, {f: old for f in CLIENT_FIELDS}, {f: 1 for f in CLIENT_FIELDS})
    report.update(version, {name: theirs})
    outcome = report.update(version, {name: mine})
    if theirs == old:  # their edit was a no-op, so nothing changed after the base
        assert outcome.kind in ("applied", "noop")
    elif mine == theirs:
        assert outcome.kind == "noop"  # the same value is not a conflict
    else:
        assert outcome == MergeOutcome("conflict", conflicting=(name,))
        assert report.values[name] == theirs  # never a silent overwrite


@given(st.integers(1, 5), st.dictionaries(client_fields, values, min_size=1))
def test_replaying_an_applied_edit_is_a_noop(version: int, changes: dict[str, Any]) -> None:
    report = Report(version, {f: -1 for f in CLIENT_FIELDS}, {f: 1 for f in CLIENT_FIELDS})
    assert report.update(version, changes).kind == "applied"
    assert report.update(version, changes).kind == "noop"
