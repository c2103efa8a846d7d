"""What every CLI command shares: settings, the runtime, one-line errors, progress display."""

from __future__ import annotations

import functools
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from backend.core.errors import XunchaError
from backend.core.runtime import Runtime
from backend.core.settings import Settings, load_settings

# soft_wrap: never break a URL or an error line at the terminal width (logs, CI, pipes).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def fail(message: str) -> None:
    raise CliError(message)


def one_line_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one clear line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            _exit_with(str(exc))
        except XunchaError as exc:
            _exit_with(f"{exc.code}: {exc.detail}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "settings"
            _exit_with(f"invalid configuration: {where}: {first['msg']}")
        except DBAPIError as exc:
            _exit_with(f"database error: {_first_line(exc.orig)}")
        except SQLAlchemyError as exc:
            _exit_with(f"database error: {_first_line(exc)}")
        except CommandError as exc:
            _exit_with(f"migration error: {_first_line(exc)}")
        except FileNotFoundError as exc:
            _exit_with(f"file not found: {exc.filename}")
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _exit_with(f"{where}{exc.strerror or exc}")
        raise AssertionError("unreachable")

    return wrapper


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _exit_with(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def refuse_to_overwrite(path: Path, overwrite: bool) -> None:
    """Exports never replace a file unless asked to (--overwrite)."""
    if path.exists() and not overwrite:
        fail(f"{path} exists; pass --overwrite to replace it")


def cli_actor() -> str:
    """Who the audit log names for a command run here: the operating-system account."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def settings_from_env(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


@contextmanager
def runtime_for(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(settings)
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def stage_progress(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the current stage and elapsed time, for multi-stage work."""
    quiet = not sys.stderr.isatty()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
        disable=quiet,
    ) as progress:
        task = progress.add_task(title, total=None)

        def step(stage: str) -> None:
            progress.update(task, description=f"{title}: {stage}")
            if quiet:
                err_console.print(f"{title}: {stage}", highlight=False)

        yield step
        progress.update(task, description=f"{title}: done")
