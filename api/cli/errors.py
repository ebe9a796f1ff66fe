"""The one place the command line turns a user's error into one line on stderr and an exit
code, instead of a Python traceback.

Every ``reelcart`` command runs inside :class:`ReelCartGroup.invoke` (the root group's class),
so a command simply raises: a domain error (``models.errors.AppError``: no Feed API
configured, an unknown agent…), an invalid configuration (pydantic ``ValidationError`` from
the settings), a database that cannot be reached or opened, a file that cannot be read or
written. Anything else is a bug and keeps its traceback.

Click's own errors (a bad parameter, ``typer.BadParameter`` raised by a command, an unknown
option or command) are one line too, instead of typer's boxed panel under a usage line:
``error: Invalid value for '--formats': … (see `reelcart feeds build --help`)``, exit code 2.

Exit codes: 1 for an error while doing the work, 2 for a configuration error (as for a usage
error), 130 when interrupted.
"""

from __future__ import annotations

import errno
import importlib
import socket
import sqlite3
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

CONFIG_ERROR = 2
WORK_ERROR = 1
INTERRUPTED = 130
BROKEN_PIPE = 141
LONGEST = 400  # characters of a partner's or driver's message we repeat

# Click's exception classes as typer raises them: typer >= 0.20 ships its own copy of click
# (``typer._click``), older ones use click itself; ``typer.BadParameter`` lives with them.
_CLICK = importlib.import_module(typer.BadParameter.__module__)
ClickException: type[Exception] = _CLICK.ClickException
UsageError: type[Exception] = _CLICK.UsageError
NoArgsIsHelpError: type[Exception] = _CLICK.NoArgsIsHelpError

_UNREACHABLE = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH,
                errno.ETIMEDOUT}


class CliError(Exception):
    """Raised by a command for a user error that has no domain error type: the message is
    printed as is (one line), with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = WORK_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _first_line(text: object) -> str:
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= LONGEST else line[:LONGEST] + "…"


def validation_line(exc: ValidationError) -> str:
    """A pydantic error as one line: the settings name the ``REELCART_…`` variable (never
    its value); other models name the field."""
    if exc.title == "Settings":
        from api.settings import settings_error_line

        return settings_error_line(exc)
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return f"invalid {exc.title}: " + "; ".join(problems)


def _database_error(exc: BaseException) -> str | None:
    """The database could not be reached, opened or logged in to (driver errors included,
    whether or not SQLAlchemy wrapped them)."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.ArgumentError) and "dialect" in str(exc).lower() or isinstance(
            exc, sa.NoSuchModuleError):
        return f"REELCART_DATABASE_URL is not a database URL we can use: {_first_line(exc)}"
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return f"lost the database connection: {_first_line(exc.orig)}"
    origin = exc.orig if isinstance(exc, sa.DBAPIError) and exc.orig is not None else exc
    name = type(origin).__module__ + "." + type(origin).__name__
    connecting = (
        isinstance(origin, socket.gaierror)
        or (isinstance(origin, OSError) and origin.errno in _UNREACHABLE)
        or isinstance(origin, ConnectionRefusedError | ConnectionResetError
                      | ConnectionAbortedError | TimeoutError)
        or name.startswith("asyncpg.exceptions.") and any(
            word in name for word in ("InvalidPassword", "InvalidAuthorization",
                                      "InvalidCatalogName", "CannotConnectNow",
                                      "TooManyConnections", "ConnectionDoesNotExist"))
        or isinstance(origin, sqlite3.OperationalError)
        and "unable to open database" in str(origin))
    if connecting:
        return (f"cannot reach the database (REELCART_DATABASE_URL): "
                f"{_first_line(origin) or type(origin).__name__}")
    return None


def error_line(exc: BaseException) -> tuple[str, int] | None:
    """The line and exit code for a user's error, or None for a bug (keep the traceback)."""
    from models.errors import AppError

    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, AppError):
        return exc.message, WORK_ERROR
    if isinstance(exc, ValidationError):
        return validation_line(exc), CONFIG_ERROR if exc.title == "Settings" else WORK_ERROR
    database = _database_error(exc)
    if database is not None:
        return database, WORK_ERROR
    if isinstance(exc, OSError) and exc.filename is not None:  # a file or folder
        return f"{exc.strerror or _first_line(exc)}: {exc.filename}", WORK_ERROR
    import httpx

    if isinstance(exc, httpx.TransportError):
        try:
            where = exc.request.url.host
        except RuntimeError:  # no request attached
            where = "the partner"
        return f"cannot reach {where}: {_first_line(exc) or type(exc).__name__}", WORK_ERROR
    return None


def usage_line(exc: Exception) -> str:
    """A click error (bad parameter, unknown option or command) as one line, pointing at
    the command's help."""
    line = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, UsageError) and ctx is not None:
        line += f" (see `{ctx.command_path} --help`)"
    return line


def _usage_error(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {usage_line(exc)}", err=True)
    return typer.Exit(int(getattr(exc, "exit_code", CONFIG_ERROR)))


class ReelCartGroup(TyperGroup):
    """The root ``reelcart`` group: runs the chosen command and renders user errors."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        """The root's own options (``reelcart --bogus``) are parsed here, before invoke."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:  # `reelcart` alone: the help, not an error
            raise
        except ClickException as exc:
            raise _usage_error(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError):
            raise
        except ClickException as exc:  # a subcommand's parameters, BadParameter
            raise _usage_error(exc) from None
        except BrokenPipeError:  # `reelcart … | head`: the reader has gone, say nothing
            raise typer.Exit(BROKEN_PIPE) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(INTERRUPTED) from None
        except Exception as exc:
            rendered = error_line(exc)
            if rendered is None:
                raise
            line, code = rendered
            typer.echo(f"error: {line}", err=True)
            raise typer.Exit(code) from None
