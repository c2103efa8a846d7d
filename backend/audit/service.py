"""Recording and verifying the audit log.

``record`` queues an entry in the caller's session; the queue is written just before that
transaction commits (a ``before_commit`` hook), so an entry exists exactly if the change it
describes was committed. A savepoint that rolls back drops what it queued (``discard_after``).

Chaining needs one appender at a time (each entry names its predecessor's hash), so the
head row is locked to append. At commit a transaction takes the head only if it is free
(``SKIP LOCKED``): then it chains the entries waiting in the inbox and its own. If another
transaction holds the head, it parks its entries in ``audit_inbox`` instead of queueing
behind it — under load, hundreds of pushes a second would otherwise commit one at a time.
Parked entries are chained by the next transaction that gets the head, by the worker's
sweep every few seconds, and before ``xuncha audit`` reads the log (``chain_parked``).
On SQLite writers are serialised anyway: the head is always free and nothing is parked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, event, exists, func, select
from sqlalchemy.orm import Session, SessionTransaction

from backend.audit.chain import GENESIS, Entry, Problem, Recorded, rehash, verify
from backend.audit.models import AuditEntry, AuditHead, AuditInbox
from backend.core.errors import XunchaError
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
    pending: list[Recorded] = session.info.setdefault(PENDING_INFO, [])
    pending.append(Recorded(utcnow(), actor, action, subject_type, str(subject_id), details))


def pending_mark(session: Session) -> int:
    """Where the queue stands now (before a savepoint), for ``discard_after``."""
    return len(session.info.get(PENDING_INFO, []))


def discard_after(session: Session, mark: int) -> None:
    """Forget what was queued since ``mark``: its savepoint rolled back."""
    pending = session.info.get(PENDING_INFO)
    if pending:
        del pending[mark:]


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    # SQLAlchemy fires this for savepoints too (push commits one per mutation): only the
    # outermost commit appends, or the head would be locked from the first mutation on.
    if session.in_nested_transaction():
        return
    pending: list[Recorded] = session.info.pop(PENDING_INFO, [])
    if pending:
        _append(session, session.info[KEY_INFO], pending)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint
        session.info.pop(PENDING_INFO, None)


def _append(session: Session, key: bytes, pending: list[Recorded]) -> None:
    # The head, and whether anything is parked, in one round trip (the usual answer: no).
    row = session.execute(
        select(AuditHead, exists(select(AuditInbox.id)))
        .where(AuditHead.id == 1)
        .with_for_update(of=AuditHead, skip_locked=True)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:  # another transaction is chaining: leave ours for the next one
        session.add_all(AuditInbox(**vars(item)) for item in pending)
        session.flush()
        return
    head, any_parked = row[0], row[1]
    parked = _take_parked(session, PARKED_PER_COMMIT) if any_parked else []
    _chain(session, key, head, [*parked, *pending])


# A committing request chains at most this many parked entries (the sweep does the rest),
# so no request pays for a whole burst.
PARKED_PER_COMMIT = 200
SWEEP_BATCH = 2000


def chain_parked(session: Session, key: bytes) -> int:
    """Chain every parked entry (waits for the head); returns how many were chained."""
    if not session.scalar(select(AuditInbox.id).limit(1)):
        return 0  # the usual case: no need to wait for the head
    head = _lock_head(session, wait=True)
    assert head is not None
    _check_key(session, key, head)
    done = 0
    while parked := _take_parked(session, SWEEP_BATCH):
        _chain(session, key, head, parked)
        done += len(parked)
    return done


class WrongAuditKey(XunchaError):
    status = 500  # a server misconfiguration, not the client's doing
    code = "wrong_audit_key"
    title = "The audit key does not match the chain"


def _check_key(session: Session, key: bytes, head: AuditHead) -> None:
    """Refuse to chain with a key the chain was not made with (say, a shell without
    XUNCHA_AUDIT_KEY): entries hashed so would look forged forever after."""
    last = session.get(AuditEntry, head.seq) if head.seq else None
    if last is not None and rehash(key, last) != last.hash:
        raise WrongAuditKey(
            "this audit key does not match the chain's last entry: "
            "set XUNCHA_AUDIT_KEY (or XUNCHA_SECRET_KEY) as the service has it"
        )


def parked_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditInbox)) or 0


def _lock_head(session: Session, *, wait: bool) -> AuditHead | None:
    """The head, locked for this transaction; None if another holds it and ``wait`` is off."""
    query = select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    head = session.scalar(query.with_for_update(skip_locked=not wait))
    if head is None and wait:  # the migration creates it; only an empty schema lacks it
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def _take_parked(session: Session, limit: int) -> list[Recorded]:
    """The oldest parked entries, removed from the inbox (this transaction chains them)."""
    rows = session.scalars(select(AuditInbox).order_by(AuditInbox.id).limit(limit)).all()
    if not rows:
        return []
    session.execute(delete(AuditInbox).where(AuditInbox.id.in_([r.id for r in rows])))
    return [
        Recorded(r.at, r.actor, r.action, r.subject_type, r.subject_id, dict(r.details or {}))
        for r in rows
    ]


def _chain(session: Session, key: bytes, head: AuditHead, items: list[Recorded]) -> None:
    for item in items:
        entry = AuditEntry(seq=head.seq + 1, prev_hash=head.hash, **vars(item))
        entry.hash = rehash(key, entry)
        session.add(entry)
        head.seq, head.hash = entry.seq, entry.hash
    session.flush()


@dataclass(frozen=True)
class Verification:
    entries: int
    head: tuple[int, str]
    problems: list[Problem]
    parked: int = 0  # recorded, not yet chained (see chain_parked)

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
    return Verification(count, head, problems, parked_count(session))


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
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject_type=row.subject_type,
                subject_id=row.subject_id,
                details=dict(row.details or {}),
                seq=row.seq,
                prev_hash=row.prev_hash,
                hash=row.hash,
            )
        after = rows[-1].seq
        session.expunge_all()
