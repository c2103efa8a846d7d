"""``xuncha users``: create and list accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from backend.accounts import repository, service
from backend.accounts.models import Role
from backend.cli.common import console, one_line_errors, runtime_for, settings_from_env
from backend.core.db import transaction

app = typer.Typer(no_args_is_help=True)


@app.command("create")
@one_line_errors
def create(
    username: str,
    role: Annotated[Role, typer.Option(help="Account role")],
    display_name: Annotated[str | None, typer.Option(help="Name shown to colleagues")] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create an account (the password is prompted for unless given)."""
    with runtime_for(settings_from_env()) as runtime, transaction(runtime.sessions) as session:
        user = service.create_user(
            session, username=username, password=password, role=role, display_name=display_name
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
