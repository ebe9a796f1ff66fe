"""``reelcart merchant-key …``."""

from __future__ import annotations

from typing import Annotated

import typer

from api import accounts
from api.cli import common, keys

app = typer.Typer(help="Issue merchant API keys.", no_args_is_help=True)


@app.command("create")
def merchant_key_create(
    name: Annotated[str, typer.Argument(
        help="Who uses it", callback=common.name_check("merchant key name", 200))],
    rotate: Annotated[bool, typer.Option(
        "--rotate", help="The name has a key: issue a new one and revoke the old")] = False,
    add: Annotated[bool, typer.Option(
        "--add", help="The name has a key: issue another one beside it")] = False,
) -> None:
    """Issue a merchant API key (orders, refunds). Printed once; only its hash is stored.
    A name with an active key gets another only with --rotate or --add."""
    existing = common.existing_choice(rotate, add)
    issued = common.in_transaction(lambda db: accounts.issue_merchant_key(db, name, existing))
    if issued.revoked:
        typer.echo(f"merchant key {name}: {issued.revoked} old key(s) revoked", err=True)
    keys.print_new_key(issued.key)


keys.add_list_and_revoke(
    app, keys.KeyKind("merchant-key", "merchant key", "merchant keys", accounts.merchant_keys,
                      accounts.revoke_merchant_keys),
    list_help="Every merchant key by name (prefix only), active or revoked.",
    revoke_help="Revoke the active merchant keys of this name (or one of them).",
    name_help="The key's name")
