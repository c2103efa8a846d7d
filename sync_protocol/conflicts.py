"""The conflict rules of docs/sync-protocol.md section 4.3, as pure functions.

The server loads a report, calls one of these, and writes what the outcome says; keeping the
decision free of I/O lets it be tested exhaustively and read as the specification.

Per-field versions make concurrent edits merge: an edit conflicts only on a field that someone
changed after the version the edit was made on (``base_version``) *and* to a different value
than the one sent. Device clocks play no part: versions are the server's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

State = Literal["open", "deleted", "closed"]
OutcomeKind = Literal["applied", "conflict", "gone", "locked", "noop"]
DeleteOutcome = Literal["applied", "conflict", "gone", "locked"]

_MISSING = object()


@dataclass(frozen=True)
class MergeOutcome:
    """What to do with a ``report.update``.

    ``noop`` is a success (the server answers ``applied`` with the unchanged version): every
    sent value already was the current one, which is what a replayed or duplicated edit looks
    like. ``apply`` holds only fields whose value really changes; ``ignored`` the server-owned
    fields the edit tried to set (answered as ``ignored_fields``), whatever the kind.
    """

    kind: OutcomeKind
    apply: dict[str, object] = field(default_factory=dict)
    conflicting: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


def merge_update(
    current_version: int,
    field_versions: Mapping[str, int],
    current_values: Mapping[str, object],
    base_version: int,
    changes: Mapping[str, object],
    server_owned: frozenset[str],
    state: State,
    *,
    own_versions: Collection[int] = frozenset(),
) -> MergeOutcome:
    """Decide a ``report.update`` made on ``base_version`` against the current report.

    * ``deleted`` → ``gone``, ``closed`` (closed/declined/merged) → ``locked``, before anything.
    * A ``base_version`` above ``current_version`` cannot come from a correct client (it never
      saw that version; think of a server restored from a backup): every field whose value
      differs is treated as conflicting, so the user sees the server's values and decides.
    * ``own_versions``: versions produced by earlier mutations *of the same device*. A field
      last changed by one of them is not a conflict: without this, a user who edits the same
      field twice while offline (both edits carry the same base) would conflict with
      themselves. Sound because that earlier edit itself passed this check. Empty by default,
      which is the strict rule of section 4.3.

    ``current_values`` and ``changes`` must hold values in the same form (e.g. both
    :class:`sync_protocol.mutations.Location` for ``location``); equality decides "same value".
    """
    if base_version < 1:
        raise ValueError("base_version must be at least 1")
    ignored = tuple(sorted(name for name in changes if name in server_owned))
    if state == "deleted":
        return MergeOutcome("gone", ignored=ignored)
    if state == "closed":
        return MergeOutcome("locked", ignored=ignored)
    from_the_future = base_version > current_version
    apply: dict[str, object] = {}
    conflicting: list[str] = []
    for name, value in changes.items():
        if name in server_owned:
            continue
        if current_values.get(name, _MISSING) == value:
            continue  # sending the value the server already has is not a conflict
        last_changed = field_versions.get(name, 0)
        changed_by_others = last_changed > base_version and last_changed not in own_versions
        if from_the_future or changed_by_others:
            conflicting.append(name)
        else:
            apply[name] = value
    if conflicting:
        # Nothing of the mutation is applied: a half-applied edit is one the user never made.
        return MergeOutcome("conflict", conflicting=tuple(sorted(conflicting)), ignored=ignored)
    if not apply:
        return MergeOutcome("noop", ignored=ignored)
    return MergeOutcome("applied", apply=apply, ignored=ignored)


def check_delete(
    current_version: int,
    base_version: int,
    state: State,
    *,
    own_versions: Collection[int] = frozenset(),
) -> DeleteOutcome:
    """A delete applies only on the version the user saw (section 4.3).

    Versions between ``base_version`` and ``current_version`` that the same device produced
    (``own_versions``) do not count: deleting a report one edited offline is not a conflict.
    """
    if base_version < 1:
        raise ValueError("base_version must be at least 1")
    if state == "deleted":
        return "gone"
    if state == "closed":
        return "locked"
    if base_version == current_version:
        return "applied"
    newer = range(base_version + 1, current_version + 1)
    if base_version < current_version and all(v in own_versions for v in newer):
        return "applied"
    return "conflict"


def bump_field_versions(
    field_versions: Mapping[str, int], applied: Collection[str], new_version: int
) -> dict[str, int]:
    """The per-field versions after applying ``applied`` fields as ``new_version``."""
    updated = dict(field_versions)
    for name in applied:
        updated[name] = new_version
    return updated
