"""What every command shares: settings and the database, wired through the composition
root (``api.runtime.database``) rather than built per command."""

from __future__ import annotations

import asyncio
import gzip
import io
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.runtime import database
from api.settings import Settings, get_settings

if TYPE_CHECKING:
    from api.accounts import Existing, KeyRow

T = TypeVar("T")


def name_check(what: str, longest: int) -> Callable[[str], str]:
    """A typer callback: a name the command will create, checked as the accounts module
    checks it, so a bad one is a bad parameter (exit 2), not an error in the work."""

    def check(value: str) -> str:
        from api.accounts import checked_name
        from models.errors import AppError

        try:
            return checked_name(value, what, longest)
        except AppError as exc:
            raise typer.BadParameter(exc.message) from None

    return check


def settings() -> Settings:
    """The configuration (read afresh). An invalid one raises pydantic's ValidationError,
    which ``api.cli.errors`` prints as one line naming the variable (exit 2)."""
    get_settings.cache_clear()
    return get_settings()


def migrated() -> Settings:
    """Settings, with the schema brought up to date first."""
    from models.migrate import upgrade

    current = settings()
    upgrade(current.database_url)
    return current


def with_database(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
                  current: Settings | None = None) -> T:
    """Run ``work`` with a sessionmaker on the configured database (disposed after)."""
    chosen = current or settings()

    async def run() -> T:
        async with database(chosen) as sessionmaker:
            return await work(sessionmaker)

    return asyncio.run(run())


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run ``work`` in one transaction on the configured database."""
    from models.db import transaction

    current = migrated()

    async def run(sessionmaker: async_sessionmaker[AsyncSession]) -> T:
        async with transaction(sessionmaker) as db:
            return await work(db)

    return with_database(run, current)


def open_lines(path: Path) -> Iterator[str]:
    """The file's lines (UTF-8, a BOM dropped; ``.gz`` decompressed on the fly). A file that
    is not UTF-8 text or not gzip is a user's error naming the file and line."""
    from api.cli.errors import CliError

    number = 0
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    try:
        with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            for line in text:
                number += 1
                yield line
    except UnicodeDecodeError:
        raise CliError(f"{path.name}: not UTF-8 text (near line {number + 1})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CliError(f"{path.name}: not a readable gzip file ({exc})") from None


def existing_choice(rotate: bool, add: bool) -> Existing:
    """``--rotate`` / ``--add`` on ``… create`` for a name that already has a key."""
    from api.accounts import Existing
    from api.cli.errors import CONFIG_ERROR, CliError

    if rotate and add:
        raise CliError("pass --rotate or --add, not both", CONFIG_ERROR)
    return Existing.rotate if rotate else Existing.add if add else Existing.refuse


def print_keys(rows: list[KeyRow], what: str) -> None:
    """One line per key: name, prefix (never the key), created, active or revoked. The
    built-in development agent has no stored key: the environment's keys act as it."""
    from api.runtime import DEV_AGENT_ID

    if not rows:
        typer.echo(f"no {what} yet")
        return
    width = max(len(r.owner) for r in rows)
    for row in rows:
        unstored = "keys from REELCART_AGENT_API_KEYS" if row.owner_id == DEV_AGENT_ID \
            else "no key"
        state = unstored if not row.key_id else (
            "active" if row.revoked_at is None
            else f"revoked {row.revoked_at:%Y-%m-%d %H:%M}")
        prefix = f"{row.prefix}…" if row.prefix else "-"
        typer.echo(f"{row.owner:<{width}}  {prefix:<15}  created "
                   f"{row.created_at:%Y-%m-%d %H:%M}  {state}")
