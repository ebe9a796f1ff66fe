"""``reelcart`` command line. One module per command group; each registers with one line
here. Commands get settings and the database through ``api.cli.common`` (the composition
root's ``api.runtime.database``), never by building engines themselves."""

from __future__ import annotations

import typer

from api.cli import (
    agent_keys,
    catalog,
    etsy,
    experiments,
    feeds,
    links,
    merchant_keys,
    payouts,
    provenance,
    server,
    ucp,
    users,
    videos,
    views,
)
from api.cli.errors import ReelCartGroup

# ReelCartGroup (api.cli.errors): a user's error is one line on stderr and an exit code,
# never a traceback; commands just raise.
app = typer.Typer(help="ReelCart: an Agentic Commerce Protocol merchant backend.",
                  no_args_is_help=True, add_completion=False, cls=ReelCartGroup)
app.registered_commands += server.app.registered_commands  # migrate, serve, demo, worker
app.add_typer(catalog.app, name="catalog")
app.add_typer(agent_keys.app, name="agent-key")
app.add_typer(merchant_keys.app, name="merchant-key")
app.add_typer(feeds.app, name="feeds")
app.add_typer(videos.app, name="videos")
app.add_typer(links.app, name="links")
app.add_typer(users.app, name="user")
app.add_typer(payouts.app, name="payouts")
app.add_typer(etsy.app, name="etsy")
catalog.app.command("sync-etsy")(etsy.catalog_sync_etsy)
app.add_typer(ucp.app, name="ucp")
app.add_typer(views.app, name="views")
app.add_typer(experiments.app, name="experiments")
app.add_typer(provenance.app, name="provenance")

__all__ = ["app"]
