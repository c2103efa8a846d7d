"""The job queue on both databases: backoff, giving up, leases, and no double work."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from backend.core.db import transaction
from backend.core.runtime import Runtime
from backend.core.types import utcnow
from backend.jobs import queue
from backend.jobs.models import Job, JobState
from backend.jobs.worker import handler, run_once, run_until_idle
from tests.support.apps import ApiHarness

CALLS: Counter[str] = Counter()
DONE: list[int] = []
DONE_LOCK = threading.Lock()


@handler("test.flaky")
def _flaky(_runtime: Runtime, payload: dict[str, Any]) -> None:
    CALLS[payload["key"]] += 1
    if CALLS[payload["key"]] <= payload["fail_times"]:
        raise RuntimeError("the store timed out")


@handler("test.count")
def _count(_runtime: Runtime, payload: dict[str, Any]) -> None:
    time.sleep(0.005)  # long enough for claims to interleave
    with DONE_LOCK:
        DONE.append(int(payload["n"]))


def _enqueue(api: ApiHarness, kind: str, payload: dict[str, Any], **kw: Any) -> int:
    with transaction(api.runtime.sessions) as session:
        return queue.enqueue(session, kind, payload, **kw).id


def _job(api: ApiHarness, job_id: int) -> Job:
    with transaction(api.runtime.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _make_due(api: ApiHarness, job_id: int) -> None:
    with transaction(api.runtime.sessions) as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(run_after=utcnow() - timedelta(seconds=1))
        )


def test_a_failing_job_backs_off_then_succeeds(api: ApiHarness) -> None:
    key = f"{api.profile}-backoff"
    job_id = _enqueue(api, "test.flaky", {"key": key, "fail_times": 2}, max_attempts=5)
    assert run_once(api.runtime, "w1")
    job = _job(api, job_id)
    assert job.state == JobState.queued.value and job.attempts == 1
    assert job.last_error == "RuntimeError: the store timed out"
    wait = (job.run_after - utcnow()).total_seconds()
    assert 1.0 < wait <= 2.0  # the first retry waits BACKOFF_BASE
    assert not run_once(api.runtime, "w1")  # not due yet: nothing runs

    _make_due(api, job_id)
    assert run_once(api.runtime, "w1")
    job = _job(api, job_id)
    wait = (job.run_after - utcnow()).total_seconds()
    assert job.attempts == 2 and 3.0 < wait <= 4.0  # doubled

    _make_due(api, job_id)
    assert run_once(api.runtime, "w1")
    job = _job(api, job_id)
    assert job.state == JobState.done.value and job.finished_at is not None
    assert CALLS[key] == 3


def test_a_job_that_keeps_failing_is_kept_as_failed_and_can_be_retried(api: ApiHarness) -> None:
    key = f"{api.profile}-give-up"
    job_id = _enqueue(api, "test.flaky", {"key": key, "fail_times": 99}, max_attempts=3)
    for _ in range(3):
        _make_due(api, job_id)
        assert run_once(api.runtime, "w1")
    job = _job(api, job_id)
    assert job.state == JobState.failed.value and job.attempts == 3
    _make_due(api, job_id)
    assert not run_once(api.runtime, "w1")  # failed jobs are not picked up again by themselves
    with transaction(api.runtime.sessions) as session:
        assert [j.id for j in queue.failed(session)] == [job_id]
        assert queue.retry_failed(session) == 1
    job = _job(api, job_id)
    assert job.state == JobState.queued.value and job.attempts == 0


def test_a_crashed_workers_job_is_taken_over_when_its_lease_ends(api: ApiHarness) -> None:
    job_id = _enqueue(api, "test.count", {"n": -1})
    with transaction(api.runtime.sessions) as session:
        first = queue.claim(session, "crashing-worker")
    assert first is not None and first.id == job_id
    # ... and that worker dies without finishing.
    with transaction(api.runtime.sessions) as session:
        assert queue.claim(session, "other-worker") is None  # still leased
        session.execute(
            update(Job).where(Job.id == job_id).values(locked_until=utcnow() - timedelta(1))
        )
    with transaction(api.runtime.sessions) as session:
        second = queue.claim(session, "other-worker")
    assert second is not None and second.id == job_id and second.attempt == 2
    with transaction(api.runtime.sessions) as session:
        assert not queue.finish(session, job_id, "crashing-worker")  # came back too late
        assert queue.finish(session, job_id, "other-worker")
    assert _job(api, job_id).state == JobState.done.value


def test_parallel_workers_never_run_a_job_twice(api: ApiHarness) -> None:
    DONE.clear()
    with transaction(api.runtime.sessions) as session:
        for n in range(60):
            queue.enqueue(session, "test.count", {"n": n})
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            run_until_idle(api.runtime, name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(DONE) == list(range(60))  # each exactly once
    with transaction(api.runtime.sessions) as session:
        counts = queue.counts(session)
    assert counts[("test.count", JobState.done.value)] == 60
    assert ("test.count", JobState.queued.value) not in counts


def test_old_finished_jobs_are_forgotten_but_failures_are_kept(api: ApiHarness) -> None:
    done_id = _enqueue(api, "test.count", {"n": 0})
    failed_id = _enqueue(api, "test.flaky", {"key": "forget", "fail_times": 9}, max_attempts=1)
    run_until_idle(api.runtime)
    with transaction(api.runtime.sessions) as session:
        assert queue.forget_done(session, utcnow() - timedelta(days=7)) == 0  # too recent
        assert queue.forget_done(session, utcnow() + timedelta(seconds=1)) == 1
        assert session.get(Job, done_id) is None
        assert session.get(Job, failed_id) is not None
