"""``xuncha worker`` and ``xuncha jobs``: the background job queue (renditions, cleanup)."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from backend.cli.common import console, one_line_errors, runtime_for, settings_from_env
from backend.core.db import transaction
from backend.jobs import queue
from backend.jobs.models import JobState
from backend.jobs.worker import run_forever, run_until_idle

app = typer.Typer(no_args_is_help=True)


@one_line_errors
def worker(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Run the due jobs, then exit (cron, tests)")
    ] = False,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between polls when idle")] = 1.0,
) -> None:
    """Run background jobs (photo renditions, evidence checks, cleanup) until stopped.

    Production runs one or more of these next to the API (XUNCHA_WORKER_IN_PROCESS is off
    there); any number can run at once without doing a job twice.
    """
    settings = settings_from_env()
    with runtime_for(settings) as runtime:
        if until_idle:
            ran = run_until_idle(runtime)
            console.print(f"ran {ran} jobs; none is due now")
            return
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            console.print(f"{signal.Signals(signum).name}: finishing the current job")
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        console.print("worker running; Ctrl-C or SIGTERM stops it after the current job")
        ran = run_forever(runtime, stop, poll)
        console.print(f"worker stopped after {ran} jobs")


@app.command("status")
@one_line_errors
def status(
    failed: Annotated[int, typer.Option(min=0, help="Show this many failed jobs")] = 10,
) -> None:
    """Jobs by kind and state, and the latest failures with their errors."""
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.read_sessions) as session:
        counts = queue.counts(session)
        failures = queue.failed(session, failed) if failed else []
        table = Table("kind", "queued", "running", "done", "failed")
        for kind in sorted({kind for kind, _ in counts}):
            table.add_row(
                kind,
                *(str(counts.get((kind, state), 0)) for state in JobState),
            )
        console.print(table if counts else "no jobs")
        for job in failures:
            error = (job.last_error or "").splitlines()[0][:160] if job.last_error else ""
            console.print(
                f"failed #{job.id} {job.kind} {job.payload} after {job.attempts}: {error}"
            )


@app.command("retry-failed")
@one_line_errors
def retry_failed() -> None:
    """Queue every failed job again (after fixing what made it fail)."""
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.sessions) as session:
        count = queue.retry_failed(session)
    console.print(f"queued {count} failed jobs again")
