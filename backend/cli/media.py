"""``xuncha media``: housekeeping of photo uploads."""

from __future__ import annotations

import typer

from backend.cli.common import console, one_line_errors, runtime_for, settings_from_env
from backend.core.db import transaction
from backend.media.cleanup import cleanup as run_cleanup

app = typer.Typer(no_args_is_help=True)


@app.command("cleanup")
@one_line_errors
def cleanup() -> None:
    """Remove expired unfinished uploads, stale multipart uploads and week-old finished jobs.

    Workers do this every hour on their own; this runs it now.
    """
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.sessions) as session:
        done = run_cleanup(session, runtime)
    console.print(
        f"expired uploads removed: {done.expired_uploads}; "
        f"stale store items removed: {done.stale_store_items}; "
        f"finished jobs forgotten: {done.forgotten_jobs}"
    )
