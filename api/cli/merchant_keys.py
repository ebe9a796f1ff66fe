"""``reelcart merchant-key …``."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli import common

app = typer.Typer(help="Issue merchant API keys.", no_args_is_help=True)


@app.command("create")
def merchant_key_create(name: Annotated[str, typer.Argument(help="Who uses it")]) -> None:
    """Issue a merchant API key (orders, refunds). Printed once; only its hash is stored."""
    from api.auth import create_merchant_key

    typer.echo(common.in_transaction(lambda db: create_merchant_key(db, name)))
    typer.echo("store this key now: it cannot be shown again", err=True)
