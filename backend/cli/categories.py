"""``xuncha categories``: the city's violation taxonomy as a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.categories import service
from backend.cli.common import (
    cli_actor,
    console,
    one_line_errors,
    refuse_to_overwrite,
    runtime_for,
    settings_from_env,
)
from backend.core.db import transaction

app = typer.Typer(no_args_is_help=True)


@app.command("import")
@one_line_errors
def import_file(
    file: Annotated[
        Path | None, typer.Argument(help="YAML or JSON category file; omit for the defaults")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, change nothing")] = False,
) -> None:
    """Replace the categories with a file's (missing codes are deactivated, never deleted)."""
    data = file.read_bytes() if file is not None else service.default_file()
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.sessions) as session:
        result = service.import_categories(session, data, dry_run=dry_run, actor=cli_actor())
    verb = "would be" if dry_run else "were"
    console.print(
        f"{len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.deactivated)} deactivated, {result.unchanged} unchanged"
        + (f" ({verb} changed: dry run)" if dry_run else "")
    )
    if result.deactivated:
        console.print(f"deactivated: {', '.join(result.deactivated)}")


@app.command("export")
@one_line_errors
def export_file(
    out: Annotated[Path, typer.Argument(help="Where to write (.yaml or .json)")],
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Write the active categories to an importable file."""
    refuse_to_overwrite(out, overwrite)
    fmt = "json" if out.suffix.lower() == ".json" else "yaml"
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.read_sessions) as session:
        data = service.export(session, fmt)
    out.write_bytes(data)
    console.print(f"wrote {out} ({fmt})")


@app.command("list")
@one_line_errors
def list_categories() -> None:
    """The active categories with their measure and time limits."""
    settings = settings_from_env()
    with runtime_for(settings) as runtime, transaction(runtime.read_sessions) as session:
        rows = service.tree(session)
    if not rows:
        console.print("no categories: xuncha categories import")
        return
    # Plain lines, not a table: keys must never be cut at the terminal's width.
    console.print("code    key  name  measure  limits accept/dispatch/handle/check", style="bold")
    for row in rows:
        limits = row.limits or {}
        steps = "/".join(limits.get(s, "-") for s in ("accept", "dispatch", "handle", "check"))
        indent = "  " if row.parent_code else ""
        console.print(
            f"{indent}{row.code:<6}  {row.key}  {row.name}  {row.measure}  {steps}",
            highlight=False,
        )
