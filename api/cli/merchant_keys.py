"""``reelcart merchant-key …``."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli import common

app = typer.Typer(help="Issue merchant API keys.", no_args_is_help=True)


@app.command("create")
def merchant_key_create(
    name: Annotated[str, typer.Argument(help="Who uses it")],
    rotate: Annotated[bool, typer.Option(
        "--rotate", help="The name has a key: issue a new one and revoke the old")] = False,
    add: Annotated[bool, typer.Option(
        "--add", help="The name has a key: issue another one beside it")] = False,
) -> None:
    """Issue a merchant API key (orders, refunds). Printed once; only its hash is stored.
    A name with an active key gets another only with --rotate or --add."""
    from api.accounts import issue_merchant_key

    existing = common.existing_choice(rotate, add)
    issued = common.in_transaction(lambda db: issue_merchant_key(db, name, existing))
    if issued.revoked:
        typer.echo(f"merchant key {name}: {issued.revoked} old key(s) revoked", err=True)
    typer.echo(issued.key)
    typer.echo("store this key now: it cannot be shown again", err=True)


@app.command("list")
def merchant_key_list() -> None:
    """Every merchant key by name (prefix only), active or revoked."""
    from api.accounts import merchant_keys

    common.print_keys(common.in_transaction(merchant_keys), "merchant keys")


@app.command("revoke")
def merchant_key_revoke(
    name: Annotated[str, typer.Argument(help="The key's name")],
    key: Annotated[str | None, typer.Option(
        help="Only the key starting with this prefix (from `merchant-key list`)")] = None,
) -> None:
    """Revoke the active merchant keys of this name (or one of them)."""
    from api.accounts import revoke_merchant_keys

    count = common.in_transaction(lambda db: revoke_merchant_keys(db, name, key))
    typer.echo(f"merchant key {name}: {count} key(s) revoked" if count
               else f"merchant key {name}: no active key to revoke")
