"""``reelcart user …``: dashboard users."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli import common

app = typer.Typer(help="Dashboard users.", no_args_is_help=True)


def _new_password(given: str | None) -> str:
    password = given if given is not None else typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise typer.BadParameter("use at least 8 characters", param_hint="password")
    return password


@app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(
        help="Login name", callback=common.name_check("user name", 100))],
    password: Annotated[str | None, typer.Option(
        envvar="REELCART_NEW_USER_PASSWORD", show_default=False,
        help="Prompted for when not given (prefer the prompt or the variable)")] = None,
    reset_password: Annotated[bool, typer.Option(
        "--reset-password", help="The user exists: set a new password (ends its sessions)"),
    ] = False,
) -> None:
    """Create a dashboard user; an existing one only gets a new password with
    --reset-password. Only a scrypt hash is stored."""
    from api.accounts import add_user, checked_name, user_exists
    from api.cli.errors import CliError

    checked_name(username, "user name", 100)
    exists = common.in_transaction(lambda db: user_exists(db, username))
    if exists and not reset_password:
        raise CliError(f"dashboard user {username!r} already exists: pass --reset-password "
                       "to give it a new password")
    chosen = _new_password(password)
    created = common.in_transaction(
        lambda db: add_user(db, username, chosen, reset_password=reset_password))
    typer.echo(f"dashboard user {username} is ready: log in at /dashboard" if created
               else f"dashboard user {username} has a new password (its sessions ended)")


@app.command("list")
def user_list() -> None:
    """Dashboard users, when they were created, and how many sessions are open."""
    from api.accounts import users

    rows = common.in_transaction(users)
    if not rows:
        typer.echo("no dashboard users yet (reelcart user create NAME)")
    width = max((len(r.username) for r in rows), default=0)
    for row in rows:
        typer.echo(f"{row.username:<{width}}  created {row.created_at:%Y-%m-%d %H:%M}  "
                   f"{row.sessions} open session(s)")


@app.command("delete")
def user_delete(username: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Remove a dashboard user and end its sessions."""
    from api.accounts import delete_user

    common.in_transaction(lambda db: delete_user(db, username))
    typer.echo(f"dashboard user {username} deleted")


@app.command("hash")
def user_hash(
    username: Annotated[str, typer.Argument(help="Login name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True)],
) -> None:
    """Print a REELCART_DASHBOARD_USER value (name:hash) to provision a login by config."""
    from api.dashboard.auth import hash_password

    typer.echo(f"{username}:{hash_password(password)}")
