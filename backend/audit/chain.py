"""The audit log's hash chain (pure): each entry carries the hash of the one before.

An entry's hash is an HMAC-SHA-256, keyed with the server's audit key, over its canonical
JSON (sequence number, time, actor, action, subject, details, previous hash). So:

* an altered entry no longer matches its own hash;
* a removed entry leaves a gap in the sequence and a broken link;
* an inserted entry breaks the sequence or the next entry's link — and cannot be given a
  valid hash without the key, so someone with write access to the database alone cannot
  rewrite the chain after it;
* a cut-off tail is caught by the head (the last sequence number and hash, kept apart and
  worth copying off the server now and then: ``xuncha audit head``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

GENESIS: Final = "0" * 64


@dataclass(frozen=True)
class Recorded:
    """What was recorded: an entry before it has a place in the chain (queued or parked)."""

    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Entry(Recorded):
    """A chained entry: what was recorded, its place and its hash."""

    seq: int
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # altered | gap | broken_link | head_mismatch
    detail: str


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    key: bytes,
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    body = json.dumps(
        [seq, canonical_time(at), actor, action, subject_type, subject_id, details, prev_hash],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


class ChainedFields(Protocol):
    """What an entry's hash covers: a chain ``Entry`` or a stored ``AuditEntry`` row."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def subject_type(self) -> str: ...
    @property
    def subject_id(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...
    @property
    def prev_hash(self) -> str: ...


def rehash(key: bytes, entry: ChainedFields) -> str:
    return entry_hash(
        key,
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        subject_type=entry.subject_type,
        subject_id=entry.subject_id,
        details=entry.details,
        prev_hash=entry.prev_hash,
    )


def verify(
    key: bytes, entries: Iterable[Entry], head: tuple[int, str] | None
) -> tuple[int, list[Problem]]:
    """Walk the entries in sequence order; (entries seen, every problem found)."""
    problems: list[Problem] = []
    expected_seq, previous = 1, GENESIS
    count = 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                Problem(entry.seq, "gap", f"expected entry {expected_seq}, found {entry.seq}")
            )
        if entry.prev_hash != previous:
            problems.append(
                Problem(entry.seq, "broken_link", "does not carry the previous entry's hash")
            )
        if not hmac.compare_digest(rehash(key, entry), entry.hash):
            problems.append(Problem(entry.seq, "altered", "its content does not match its hash"))
        expected_seq, previous = entry.seq + 1, entry.hash
    if head is not None and (expected_seq - 1, previous) != head:
        problems.append(
            Problem(
                head[0],
                "head_mismatch",
                f"the log ends at entry {expected_seq - 1}; the head says {head[0]}",
            )
        )
    return count, problems
