"""``reelcart user …``: dashboard users."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli import common

app = typer.Typer(help="Dashboard users.", no_args_is_help=True)


@app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True,
                                          envvar="REELCART_NEW_USER_PASSWORD")],
) -> None:
    """Create a dashboard user (or set a new password). Only a scrypt hash is stored."""
    from api.dashboard.auth import create_user

    if len(password) < 8:
        raise typer.BadParameter("use at least 8 characters")
    common.in_transaction(lambda db: create_user(db, username, password))
    typer.echo(f"dashboard user {username} is ready: log in at /dashboard")


@app.command("hash")
def user_hash(
    username: Annotated[str, typer.Argument(help="Login name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True)],
) -> None:
    """Print a REELCART_DASHBOARD_USER value (name:hash) to provision a login by config."""
    from api.dashboard.auth import hash_password

    typer.echo(f"{username}:{hash_password(password)}")
