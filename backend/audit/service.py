"""Recording and verifying the audit log.

``record`` queues an entry in the caller's session; the queue is appended to the chain just
before that transaction commits (a ``before_commit`` hook), so an entry exists exactly if the
change it describes was committed. The head row is locked for the append: appends are
serialised, which the chain needs (each entry names its predecessor's hash) — and because the
lock is taken only at commit, it is held for the append and the commit alone, not for the
rest of a long transaction (a push of many reports). A savepoint that rolls back drops what
it queued (``discard_after``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from backend.audit.chain import GENESIS, Entry, Problem, rehash, verify
from backend.audit.models import AuditEntry, AuditHead
from backend.core.settings import Settings
from backend.core.types import utcnow

KEY_INFO = "xuncha_audit_key"
PENDING_INFO = "xuncha_audit_pending"
_BATCH = 1000


def audit_key(settings: Settings) -> bytes:
    """The HMAC key of the chain (derived from the audit secret, else the token secret)."""
    secret = settings.audit_key or settings.secret_key
    return hashlib.sha256(b"xuncha-audit\x00" + secret.get_secret_value().encode()).digest()


def record(
    session: Session,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    **details: Any,
) -> None:
    """Queue an entry; it is appended when ``session``'s transaction commits."""
    if not isinstance(session.info.get(KEY_INFO), bytes):
        raise RuntimeError("this session has no audit key (build sessions through Runtime)")
    pending: list[_Pending] = session.info.setdefault(PENDING_INFO, [])
    pending.append(_Pending(utcnow(), actor, action, subject_type, str(subject_id), details))


def pending_mark(session: Session) -> int:
    """Where the queue stands now (before a savepoint), for ``discard_after``."""
    return len(session.info.get(PENDING_INFO, []))


def discard_after(session: Session, mark: int) -> None:
    """Forget what was queued since ``mark``: its savepoint rolled back."""
    pending = session.info.get(PENDING_INFO)
    if pending:
        del pending[mark:]


@dataclass(frozen=True)
class _Pending:
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending: list[_Pending] = session.info.pop(PENDING_INFO, [])
    if pending:
        _append(session, session.info[KEY_INFO], pending)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint
        session.info.pop(PENDING_INFO, None)


def _append(session: Session, key: bytes, pending: list[_Pending]) -> None:
    head = session.scalar(
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if head is None:  # the migration creates it; a fresh test schema might not have it yet
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    for item in pending:
        entry = AuditEntry(
            seq=head.seq + 1,
            at=item.at,
            actor=item.actor,
            action=item.action,
            subject_type=item.subject_type,
            subject_id=item.subject_id,
            details=item.details,
            prev_hash=head.hash,
        )
        entry.hash = rehash(key, entry)
        session.add(entry)
        head.seq, head.hash = entry.seq, entry.hash
    session.flush()


@dataclass(frozen=True)
class Verification:
    entries: int
    head: tuple[int, str]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_log(session: Session, key: bytes, expected_head: str | None = None) -> Verification:
    head_row = session.get(AuditHead, 1)
    head = (head_row.seq, head_row.hash) if head_row is not None else (0, GENESIS)
    count, problems = verify(key, _entries(session), head)
    if expected_head is not None and expected_head not in (head[1], f"{head[0]}:{head[1]}"):
        problems.append(
            Problem(head[0], "head_mismatch", "the head is not the one recorded elsewhere")
        )
    return Verification(count, head, problems)


def _entries(session: Session) -> Iterator[Entry]:
    after = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            yield Entry(
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.subject_type,
                row.subject_id,
                dict(row.details or {}),
                row.prev_hash,
                row.hash,
            )
        after = rows[-1].seq
        session.expunge_all()
