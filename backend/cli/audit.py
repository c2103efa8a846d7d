"""``xuncha audit``: check the hash-chained audit log, show its head and latest entries."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from backend.audit.models import AuditEntry
from backend.audit.service import audit_key, chain_parked, verify_log
from backend.cli.common import console, err_console, one_line_errors, runtime_for, settings_from_env
from backend.core.db import transaction
from backend.core.runtime import Runtime

app = typer.Typer(no_args_is_help=True)


@app.command("verify")
@one_line_errors
def verify(
    expect_head: Annotated[
        str | None,
        typer.Option(help="A head recorded earlier (SEQ:HASH or HASH): the log must end there"),
    ] = None,
) -> None:
    """Check every entry's hash and link; any altered, removed or inserted entry fails (exit 1)."""
    settings = settings_from_env()
    with runtime_for(settings) as runtime:
        _chain_parked(runtime)
        with transaction(runtime.read_sessions) as session:
            result = verify_log(session, audit_key(settings), expect_head)
    if result.ok:
        console.print(f"audit log intact: {result.entries} entries, head {_head(result.head)}")
        if result.parked:
            console.print(f"{result.parked} entries recorded since, waiting to be chained")
        return
    for problem in result.problems[:50]:
        err_console.print(f"entry {problem.seq}: {problem.kind}: {problem.detail}", highlight=False)
    if len(result.problems) > 50:
        err_console.print(f"… and {len(result.problems) - 50} more")
    err_console.print(f"[bold red]audit log NOT intact[/]: {len(result.problems)} problem(s)")
    raise typer.Exit(1)


@app.command("head")
@one_line_errors
def head() -> None:
    """The chain's head (SEQ:HASH): copy it off the server now and then to catch cut-off tails."""
    settings = settings_from_env()
    with runtime_for(settings) as runtime:
        _chain_parked(runtime)
        with transaction(runtime.read_sessions) as session:
            result = verify_log(session, audit_key(settings))
    console.print(_head(result.head), highlight=False)


@app.command("tail")
@one_line_errors
def tail(count: Annotated[int, typer.Option("-n", min=1, max=1000)] = 20) -> None:
    """The latest entries."""
    settings = settings_from_env()
    with runtime_for(settings) as runtime:
        _chain_parked(runtime)
        with transaction(runtime.read_sessions) as session:
            rows = session.scalars(
                select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(count)
            ).all()
    for row in reversed(rows):
        console.print(
            f"{row.seq:>8} {row.at:%Y-%m-%d %H:%M:%S} {row.actor} {row.action} "
            f"{row.subject_type}:{row.subject_id} {row.details}",
            highlight=False,
        )


def _chain_parked(runtime: Runtime) -> None:
    """Entries parked while the service was busy join the chain before it is read."""
    with transaction(runtime.sessions) as session:
        chain_parked(session, audit_key(runtime.settings))


def _head(head: tuple[int, str]) -> str:
    return f"{head[0]}:{head[1]}"
