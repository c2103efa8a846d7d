"""Running jobs: one loop, used in process (embedded profile) or by ``xuncha worker``.

Each job runs outside the claim's transaction (rendering a photo takes tens of milliseconds;
no lock is held meanwhile) and its handler gets its own transaction.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from backend.core.db import transaction
from backend.core.runtime import Runtime
from backend.jobs import queue

log = logging.getLogger("xuncha.worker")
Handler = Callable[[Runtime, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``kind``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def run_once(runtime: Runtime, worker: str) -> bool:
    """Claim and run one job; False when nothing was due."""
    _load_handlers()
    with transaction(runtime.sessions) as session:
        claimed = queue.claim(session, worker, tuple(HANDLERS))
    if claimed is None:
        return False
    try:
        HANDLERS[claimed.kind](runtime, claimed.payload)
    except Exception as exc:
        log.warning(
            "job %s (%s) attempt %s failed: %s",
            claimed.id,
            claimed.kind,
            claimed.attempt,
            exc,
            exc_info=True,
        )
        with transaction(runtime.sessions) as session:
            state = queue.retry_later(session, claimed.id, worker, f"{type(exc).__name__}: {exc}")
        if state.value == "failed":
            log.error(
                "job %s (%s) gave up after %s attempts", claimed.id, claimed.kind, claimed.attempt
            )
        return True
    with transaction(runtime.sessions) as session:
        queue.finish(session, claimed.id, worker)
    return True


def run_until_idle(runtime: Runtime, worker: str | None = None, limit: int = 10_000) -> int:
    """Run due jobs until none is left (tests, CLI ``--until-idle``); returns how many ran."""
    name = worker or worker_name()
    count = 0
    while count < limit and run_once(runtime, name):
        count += 1
    return count


CLEANUP_EVERY_S = 3600.0
# Audit entries parked while the head was busy are chained within seconds even when no
# further request comes to chain them (backend.audit.service).
AUDIT_SWEEP_EVERY_S = 5.0


class Periodic:
    """Housekeeping every worker does now and then: chaining parked audit entries, and
    abandoned uploads. Several workers doing it at once is harmless (the audit head is
    locked; expired rows are claimed with SKIP LOCKED)."""

    def __init__(
        self, every_s: float = CLEANUP_EVERY_S, audit_every_s: float = AUDIT_SWEEP_EVERY_S
    ) -> None:
        self.every_s = every_s
        self.audit_every_s = audit_every_s
        self.last = 0.0
        self.last_audit = 0.0

    def maybe_run(self, runtime: Runtime) -> None:
        if time.monotonic() - self.last_audit >= self.audit_every_s:
            self.last_audit = time.monotonic()
            self._chain_audit(runtime)
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        from backend.media.cleanup import cleanup

        try:
            with transaction(runtime.sessions) as session:
                done = cleanup(session, runtime)
            if done.expired_uploads or done.stale_store_items or done.forgotten_jobs:
                log.info(
                    "cleanup: %s expired uploads, %s stale store items, %s old jobs",
                    done.expired_uploads,
                    done.stale_store_items,
                    done.forgotten_jobs,
                )
        except Exception:
            log.exception("cleanup failed")

    @staticmethod
    def _chain_audit(runtime: Runtime) -> None:
        from backend.audit.service import audit_key, chain_parked

        if runtime.settings.is_sqlite:
            return  # one writer at a time: nothing is ever parked there
        try:
            with transaction(runtime.sessions) as session:
                chained = chain_parked(session, audit_key(runtime.settings))
            if chained:
                log.info("audit: chained %s parked entries", chained)
        except Exception:
            log.exception("chaining parked audit entries failed")


class BackgroundWorker:
    """A worker thread inside the API process (embedded profile: nothing else to run)."""

    def __init__(self, runtime: Runtime, poll_s: float = 0.5) -> None:
        self.runtime = runtime
        self.poll_s = poll_s
        self.name = worker_name()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._periodic = Periodic()
        self._thread = threading.Thread(target=self._loop, name="xuncha-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._periodic.maybe_run(self.runtime)
            try:
                busy = run_once(self.runtime, self.name)
            except Exception:
                log.exception("worker loop error")
                busy = False
            if not busy:
                self._wake.wait(self.poll_s)
                self._wake.clear()


def run_forever(runtime: Runtime, stop: threading.Event, poll_s: float = 1.0) -> int:
    """``xuncha worker``: process jobs until ``stop`` is set (SIGTERM/SIGINT); returns how many.

    A job in progress is finished before returning. A database outage is waited out rather
    than fatal: the worker logs, sleeps and tries again (its jobs stay queued meanwhile).
    """
    name = worker_name()
    periodic = Periodic()
    done = 0
    log.info("worker %s started", name)
    while not stop.is_set():
        periodic.maybe_run(runtime)
        try:
            busy = run_once(runtime, name)
        except Exception:
            log.exception("worker %s: could not claim or finish a job; trying again", name)
            busy = False
        if busy:
            done += 1
        else:
            stop.wait(poll_s)
    log.info("worker %s stopped after %s jobs", name, done)
    return done


def _load_handlers() -> None:
    # Importing the modules registers their handlers; done lazily to avoid import cycles
    # (a second import is a dictionary lookup).
    import backend.media.jobs  # noqa: F401
