"""The job queue: enqueue inside a caller's transaction, claim with a lease, finish or retry.

Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several worker processes never take
the same job; on SQLite the write lock serialises claims. A claimed job carries a lease: if its
worker dies, the job becomes claimable again when the lease runs out. Handlers must therefore
be idempotent (they are: renditions are rewritten under fixed keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from backend.core.types import utcnow
from backend.jobs.models import Job, JobState

LEASE = timedelta(minutes=5)
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=30)


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int


def enqueue(session: Session, kind: str, payload: dict[str, Any], *, max_attempts: int = 8) -> Job:
    """Queue a job in the caller's transaction: it exists exactly if the work it follows does."""
    job = Job(kind=kind, payload=payload, max_attempts=max_attempts, run_after=utcnow())
    session.add(job)
    session.flush()
    return job


def claim(session: Session, worker: str, kinds: tuple[str, ...] | None = None) -> Claimed | None:
    """Take the oldest due job (or one whose worker's lease ran out), or None."""
    now = utcnow()
    due = or_(
        and_(Job.state == JobState.queued.value, Job.run_after <= now),
        and_(Job.state == JobState.running.value, Job.locked_until < now),
    )
    query = select(Job).where(due).order_by(Job.id).limit(1).with_for_update(skip_locked=True)
    if kinds:
        query = query.where(Job.kind.in_(kinds))
    job = session.scalar(query)
    if job is None:
        return None
    job.state = JobState.running.value
    job.locked_by = worker
    job.locked_until = now + LEASE
    job.attempts += 1
    session.flush()
    return Claimed(job.id, job.kind, dict(job.payload), job.attempts)


def finish(session: Session, job_id: int, worker: str) -> bool:
    """Mark done, if this worker still holds the job (a lease may have run out meanwhile)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker, Job.state == JobState.running.value)
        .values(state=JobState.done.value, finished_at=utcnow(), locked_until=None)
    )
    return bool(getattr(result, "rowcount", 0))


def retry_later(session: Session, job_id: int, worker: str, error: str) -> JobState:
    """Back off exponentially; give up (state failed) after max_attempts."""
    job = session.get(Job, job_id)
    if job is None or job.locked_by != worker:
        return JobState.running
    job.last_error = error[:4000]
    job.locked_until = None
    if job.attempts >= job.max_attempts:
        job.state = JobState.failed.value
        job.finished_at = utcnow()
    else:
        job.state = JobState.queued.value
        job.run_after = utcnow() + backoff(job.attempts)
    session.flush()
    return JobState(job.state)


def backoff(attempts: int) -> timedelta:
    delay: timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.state.in_([JobState.queued.value, JobState.running.value]))
        )
        or 0
    )


def next_due(session: Session) -> datetime | None:
    return session.scalar(
        select(Job.run_after)
        .where(Job.state == JobState.queued.value)
        .order_by(Job.run_after)
        .limit(1)
    )


def counts(session: Session) -> dict[tuple[str, str], int]:
    """How many jobs of each (kind, state)."""
    rows = session.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state))
    return {(kind, state): int(n) for kind, state, n in rows}


def failed(session: Session, limit: int = 20) -> list[Job]:
    query = select(Job).where(Job.state == JobState.failed.value).order_by(Job.id.desc())
    return list(session.scalars(query.limit(limit)))


def retry_failed(session: Session) -> int:
    """Queue every failed job again with a fresh set of attempts (after fixing the cause)."""
    result = session.execute(
        update(Job)
        .where(Job.state == JobState.failed.value)
        .values(state=JobState.queued.value, attempts=0, run_after=utcnow(), finished_at=None)
    )
    return int(getattr(result, "rowcount", 0))


def forget_done(session: Session, finished_before: datetime) -> int:
    """Delete finished jobs (done, not failed: those stay for inspection) older than a date."""
    result = session.execute(
        delete(Job).where(Job.state == JobState.done.value, Job.finished_at < finished_before)
    )
    return int(getattr(result, "rowcount", 0))
