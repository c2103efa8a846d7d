"""``xuncha users``: create and list accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from backend.accounts import repository, service
from backend.accounts.models import Role
from backend.cli.common import (
    cli_actor,
    console,
    fail,
    one_line_errors,
    runtime_for,
    settings_from_env,
)
from backend.core.db import transaction
from backend.devices import service as devices

app = typer.Typer(no_args_is_help=True)


@app.command("create")
@one_line_errors
def create(
    username: str,
    role: Annotated[Role, typer.Option(help="Account role")],
    display_name: Annotated[str | None, typer.Option(help="Name shown to colleagues")] = None,
    unit: Annotated[
        str | None,
        typer.Option(help="Org unit code (district 6 / street 9 / community 12 digits)"),
    ] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create an account (the password is prompted for unless given)."""
    with runtime_for(settings_from_env()) as runtime, transaction(runtime.sessions) as session:
        user = service.create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            unit_code=unit,
            actor=cli_actor(),
        )
        console.print(f"created {user.username} ({user.role}) with id {user.id}")


@app.command("list")
@one_line_errors
def list_users() -> None:
    """List accounts."""
    with runtime_for(settings_from_env()) as runtime, transaction(runtime.sessions) as session:
        table = Table("id", "username", "name", "role", "active")
        for user in repository.list_all(session):
            table.add_row(
                str(user.id), user.username, user.display_name, user.role, str(user.is_active)
            )
        console.print(table)


@app.command("enrollment-code")
@one_line_errors
def enrollment_code(
    username: str,
    server: Annotated[
        str | None, typer.Option(help="Base URL phones use (default: XUNCHA_PUBLIC_BASE_URL)")
    ] = None,
) -> None:
    """Print a one-time enrollment code (and QR payload) for a user's new phone."""
    settings = settings_from_env()
    base = server or settings.public_base_url or f"http://{settings.host}:{settings.port}"
    with runtime_for(settings) as runtime, transaction(runtime.sessions) as session:
        user = repository.by_username(session, username)
        if user is None:
            fail(f"no user named {username!r}")
        assert user is not None
        issued = devices.create_enrollment_code(session, settings, user.id, cli_actor(), base)
    console.print(
        f"code {issued.code} for {username}, valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    console.print(f"QR payload: {issued.qr_payload}", highlight=False)
