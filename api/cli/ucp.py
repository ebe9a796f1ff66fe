"""``reelcart ucp …``: UCP keys and conformance fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli import common

app = typer.Typer(help="Universal Commerce Protocol (UCP) binding.", no_args_is_help=True)


@app.command("keygen")
def keygen() -> None:
    """Print a new EC P-256 private key (PEM) for REELCART_UCP_SIGNING_KEY."""
    from protocols.ucp.signing import SigningKey

    typer.echo(SigningKey.generate_pem(), nl=False)


@app.command("seed-fixtures")
def seed_fixtures(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    merchant_config_out: Annotated[Path, typer.Option(
        help="Write the store's merchant configuration (rates, codes) here")],
) -> None:
    """Load a UCP conformance fixture store (products, stock, customers' addresses) and
    write its checkout configuration for REELCART_MERCHANT_CONFIG."""
    from protocols.ucp import fixtures

    loaded = fixtures.load(directory)
    report = common.in_transaction(lambda db: fixtures.seed(db, loaded))
    settings = common.settings()
    configured = settings.merchant_config
    # Start from the configured profile (links, names), unless it is the file we write.
    base = settings.merchant_profile() if configured is not None and configured.exists() \
        and configured.resolve() != merchant_config_out.resolve() else None
    profile = loaded.merchant_profile(base)
    merchant_config_out.write_text(profile.model_dump_json(indent=2))
    typer.echo(f"products: {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged; {len(loaded.addresses)} saved addresses; "
               f"merchant config → {merchant_config_out}")
