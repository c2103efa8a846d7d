"""``xuncha calendar``: the city's working calendar (office hours, weekend, holidays, 调休)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from backend.cli.common import (
    cli_actor,
    console,
    fail,
    one_line_errors,
    refuse_to_overwrite,
    runtime_for,
    settings_from_env,
)
from backend.core.db import transaction
from backend.worktime import service

app = typer.Typer(no_args_is_help=True)


@app.command("import")
@one_line_errors
def import_file(file: Annotated[Path, typer.Argument(help="YAML or JSON calendar file")]) -> None:
    """Replace the working calendar with a file's (refused whole on any problem)."""
    data = file.read_bytes()
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.sessions) as session:
        calendar = service.replace(session, data, cli_actor())
    console.print(
        f"calendar replaced: {calendar.day_minutes // 60}h{calendar.day_minutes % 60:02d} a day, "
        f"{len(calendar.holidays)} holidays, {len(calendar.workdays)} make-up workdays"
    )


@app.command("export")
@one_line_errors
def export_file(
    out: Annotated[Path, typer.Argument(help="Where to write (.yaml or .json)")],
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Write the working calendar to an importable file."""
    refuse_to_overwrite(out, overwrite)
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.read_sessions) as session:
        data = service.export(session, "json" if out.suffix.lower() == ".json" else "yaml")
    out.write_bytes(data)
    console.print(f"wrote {out}")


@app.command("deadline")
@one_line_errors
def deadline(
    start: Annotated[str, typer.Argument(help="RFC 3339 with offset, e.g. 2026-11-23T09:00+08:00")],
    limit: Annotated[str, typer.Argument(help="Working time: 30m, 4h, 7d")],
) -> None:
    """When a limit starting at START runs out on the working calendar."""
    try:
        begin = datetime.fromisoformat(start)
    except ValueError:
        fail(f"{start!r} is not an RFC 3339 time")
    if begin.tzinfo is None:
        fail("the start needs a UTC offset, e.g. +08:00")
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.read_sessions) as session:
        calendar = service.current(session)
    try:
        end = calendar.deadline(begin, limit)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"{end.isoformat()} ({limit} of working time after {begin.isoformat()})")
