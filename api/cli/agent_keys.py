"""``reelcart agent-key …``: keys, webhook and feed endpoints of AI agents."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from api import accounts
from api.cli import common, keys

app = typer.Typer(help="Issue API keys to AI agents.", no_args_is_help=True)


@app.command("create")
def agent_key_create(
    name: Annotated[str, typer.Argument(help="Agent name, e.g. chatgpt",
                                        callback=common.name_check("agent name", 200))],
    signing_secret: Annotated[str | None, typer.Option(
        envvar="REELCART_NEW_AGENT_SIGNING_SECRET",
        help="Shared secret for request signatures")] = None,
    rotate: Annotated[bool, typer.Option(
        "--rotate", help="The agent exists: issue a new key and revoke its old ones")] = False,
    add: Annotated[bool, typer.Option(
        "--add", help="The agent exists: issue another key beside the old ones")] = False,
) -> None:
    """Issue a bearer key for a new agent. The key is printed once; only its hash is stored.
    An existing agent gets a new key only with --rotate or --add."""
    existing = common.existing_choice(rotate, add)
    issued = common.in_transaction(lambda db: accounts.issue_agent_key(
        db, name, signing_secret=signing_secret, existing=existing))
    typer.echo(f"{'new' if issued.created else 'existing'} agent {name} ({issued.owner_id})"
               + (f"; {issued.revoked} old key(s) revoked" if issued.revoked else ""), err=True)
    keys.print_new_key(issued.key)


keys.add_list_and_revoke(
    app, keys.KeyKind("agent-key", "agent", "agents", accounts.agent_keys,
                      accounts.revoke_agent_keys),
    list_help="Every agent and its keys (prefix only), active or revoked.",
    revoke_help="Revoke the agent's active keys (or one of them). Its orders and settings "
                "stay.",
    name_help="Agent name")


@app.command("webhook")
def agent_webhook(
    name: Annotated[str, typer.Argument(help="Agent name")],
    url: Annotated[str, typer.Option(help="The agent's order_events endpoint")],
    secret: Annotated[str, typer.Option(envvar="REELCART_NEW_AGENT_WEBHOOK_SECRET",
                                        help="HMAC key the agent gave you")],
) -> None:
    """Where this agent receives signed order webhooks (order_create / order_update)."""
    if len(secret) < 16:
        raise typer.BadParameter("--secret must be at least 16 characters")
    _check_outbound(url)
    _update_agent(name, webhook_url=url, webhook_secret=secret)
    typer.echo(f"order webhooks for {name} go to {url}")


def _check_outbound(url: str) -> None:
    problem = common.settings().outbound_policy().problem(url)
    if problem is not None:
        raise typer.BadParameter(f"--url cannot be used: {problem}")


def _update_agent(name: str, **values: object) -> None:
    from sqlalchemy import select

    from models import Agent

    async def work(db: AsyncSession) -> bool:
        agent = await db.scalar(select(Agent).where(Agent.name == name))
        if agent is None:
            return False
        for key, value in values.items():
            setattr(agent, key, value)
        return True

    if not common.in_transaction(work):
        typer.echo(f"no agent named {name!r} (create one with `reelcart agent-key create`)",
                   err=True)
        raise typer.Exit(1)


@app.command("feed")
def agent_feed(
    name: Annotated[str, typer.Argument(help="Agent name")],
    url: Annotated[str, typer.Option(help="Base URL of the agent's ACP Feed API")],
    token: Annotated[str | None, typer.Option(envvar="REELCART_NEW_AGENT_FEED_TOKEN",
                                              help="Bearer token for it")] = None,
    country: Annotated[str | None, typer.Option(help="Target country (ISO alpha-2)")] = None,
) -> None:
    """Where `feeds push` sends this agent our catalog."""
    _check_outbound(url)
    _update_agent(name, feed_api_url=url.rstrip("/"), feed_api_token=token,
                  feed_target_country=country.upper() if country else None)
    typer.echo(f"feeds for {name} go to {url}")
