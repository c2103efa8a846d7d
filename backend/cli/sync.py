"""``xuncha sync``: maintenance of the sync change log."""

from __future__ import annotations

from typing import Annotated

import typer

from backend.cli.common import console, one_line_errors, runtime_for, settings_from_env
from backend.core.db import transaction
from backend.sync.maintenance import prune_change_log

app = typer.Typer(no_args_is_help=True)


@app.command("prune")
@one_line_errors
def prune(
    days: Annotated[
        int | None,
        typer.Option(
            min=1, help="Keep this many days (default: XUNCHA_SYNC_CHANGE_RETENTION_DAYS)"
        ),
    ] = None,
) -> None:
    """Delete old change-log entries; phones whose cursor is older get a reset, never a gap."""
    settings = settings_from_env()
    keep = days or settings.sync_change_retention_days
    with runtime_for(settings) as runtime, transaction(runtime.sessions) as session:
        removed = prune_change_log(session, keep)
    console.print(f"removed {removed} change-log entries older than {keep} days")
