"""The ``xuncha`` command: serve, migrate, demo, worker, grids, users, sync, jobs, media."""

from __future__ import annotations

import typer

from backend.cli import audit, calendar, categories, grids, jobs, media, serve, sync, users

app = typer.Typer(
    name="xuncha",
    help="Xuncha (巡查): backend for city-management field inspection.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("migrate")(serve.migrate)
app.command("demo")(serve.demo)
app.command("worker")(jobs.worker)
app.add_typer(grids.app, name="grids", help="Import, inspect, export and activate unit grids.")
app.add_typer(users.app, name="users", help="Manage accounts and enroll their phones.")
app.add_typer(
    categories.app, name="categories", help="Import, export and list violation categories."
)
app.add_typer(sync.app, name="sync", help="Maintain the offline-sync change log.")
app.add_typer(calendar.app, name="calendar", help="The working calendar for case time limits.")
app.add_typer(audit.app, name="audit", help="Verify the hash-chained audit log.")
app.add_typer(jobs.app, name="jobs", help="Inspect and retry background jobs.")
app.add_typer(media.app, name="media", help="Housekeeping of photo uploads.")


def main() -> None:
    app()
