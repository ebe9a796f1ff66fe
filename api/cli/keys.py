"""What ``agent-key`` and ``merchant-key`` share: their ``list`` and ``revoke`` commands
(one kind of API key each) and how a new key is printed.

No ``from __future__ import annotations`` here: the commands' ``Annotated`` parameters use
the kind's names in their help, and Typer reads them from the evaluated annotations.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import KeyRow
from api.cli import common


@dataclass(frozen=True, slots=True)
class KeyKind:
    command: str  # the command group, e.g. "agent-key"
    owner: str  # how a name is introduced in messages, e.g. "agent"
    listed: str  # what `list` prints "no … yet" about, e.g. "agents"
    rows: Callable[[AsyncSession], Awaitable[list[KeyRow]]]
    revoke: Callable[[AsyncSession, str, str | None], Awaitable[int]]


def add_list_and_revoke(app: typer.Typer, kind: KeyKind, *, list_help: str,
                        revoke_help: str, name_help: str) -> None:
    """Register ``list`` and ``revoke`` for ``kind`` on ``app``."""

    @app.command("list", help=list_help)
    def list_keys() -> None:
        common.print_keys(common.in_transaction(kind.rows), kind.listed)

    @app.command("revoke", help=revoke_help)
    def revoke_keys(
        name: Annotated[str, typer.Argument(help=name_help)],
        key: Annotated[str | None, typer.Option(
            help=f"Only the key starting with this prefix (from `{kind.command} list`)")]
        = None,
    ) -> None:
        count = common.in_transaction(lambda db: kind.revoke(db, name, key))
        typer.echo(f"{kind.owner} {name}: {count} key(s) revoked" if count
                   else f"{kind.owner} {name}: no active key to revoke")


def print_new_key(key: str) -> None:
    """The key on stdout, once; only its hash is stored."""
    typer.echo(key)
    typer.echo("store this key now: it cannot be shown again", err=True)
