"""``xuncha serve``, ``xuncha migrate`` and ``xuncha demo``."""

from __future__ import annotations

import socket
from typing import Annotated

import typer
import uvicorn

from backend.cli.common import (
    console,
    fail,
    one_line_errors,
    runtime_for,
    settings_from_env,
    stage_progress,
)
from backend.core import migrate as migrations
from backend.core.logging import configure_logging
from backend.core.settings import Settings

HostOpt = Annotated[str | None, typer.Option(help="Interface to listen on")]
PortOpt = Annotated[int | None, typer.Option(help="TCP port", min=1, max=65535)]


@one_line_errors
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
    downgrade: Annotated[bool, typer.Option(help="Downgrade to REVISION instead")] = False,
) -> None:
    """Bring the database schema to a revision (default: the latest)."""
    settings = settings_from_env()
    with runtime_for(settings) as runtime:
        before = migrations.current_revision(runtime.engine)
        if downgrade:
            migrations.downgrade(runtime.engine, revision)
        else:
            migrations.upgrade(runtime.engine, revision)
        after = migrations.current_revision(runtime.engine)
    console.print(f"schema: {before or 'empty'} → {after or 'empty'} ({_where(settings)})")


@one_line_errors
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the API server on the configured profile."""
    settings = settings_from_env()
    _prepare_schema(settings)
    _run(settings, host or settings.host, port or settings.port, workers)


@one_line_errors
def demo(
    host: HostOpt = None,
    port: PortOpt = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the server after seeding")
    ] = True,
) -> None:
    """Create the demo city (2,880 grids), demo accounts and responsibilities, then serve."""
    from backend.demo.seed import DEMO_PASSWORD, seed_demo

    settings = settings_from_env()
    _prepare_schema(settings, always_migrate=True)
    with runtime_for(settings) as runtime, stage_progress("demo city") as step:
        summary = seed_demo(runtime, step)
    state = "created" if summary.created_grids else "already present"
    console.print(f"demo city: {summary.grid_count} grids ({state}) in {_where(settings)}")
    console.print(
        "demo accounts (password [bold]"
        + DEMO_PASSWORD
        + "[/]): "
        + ", ".join(f"{a.username} ({a.role.value})" for a in summary.accounts),
        highlight=False,
    )
    console.print(
        "enroll a phone (or scripts/simulate_patrol.py): xuncha users enrollment-code inspector01",
        highlight=False,
    )
    if serve_after:
        _run(settings, host or settings.host, port or settings.port, 1)


def _prepare_schema(settings: Settings, always_migrate: bool = False) -> None:
    with runtime_for(settings) as runtime:
        current = migrations.current_revision(runtime.engine)
        head = migrations.head_revision(runtime.engine)
        if current == head:
            return
        # The embedded profile is a local file only this service uses: migrating on start is
        # safe. A shared production database is migrated deliberately, by `xuncha migrate`.
        if settings.is_sqlite or always_migrate:
            migrations.upgrade(runtime.engine)
            return
    fail(
        f"database schema is at {current or 'empty'}, this code needs {head}: run `xuncha migrate`"
    )


def _run(settings: Settings, host: str, port: int, workers: int) -> None:
    _check_port_free(host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{shown}:{port}"
    console.print(
        f"[bold green]Xuncha is serving at {url}[/]  (API docs: {url}/docs, profile "
        f"{settings.profile.value}, {_where(settings)}) — Ctrl+C stops it",
        highlight=False,
    )
    configure_logging(settings.log_level, json_lines=settings.log_json)
    uvicorn.run(
        "backend.main:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_keep_alive=settings.http_keep_alive_s,
        # The client address (per-address login limits) comes from X-Forwarded-For only
        # when the peer is one of these proxies (None: uvicorn's default, 127.0.0.1).
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port")


def _where(settings: Settings) -> str:
    if settings.is_sqlite:
        return f"database {settings.url.removeprefix('sqlite:///')}"
    return "database " + settings.url.split("@")[-1]
