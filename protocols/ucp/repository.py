"""SQL for the UCP binding's own tables."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Agent, UcpAddress, UcpCheckout
from models.base import new_id, utc_now

ADDRESS_FIELDS = ("street_address", "extended_address", "address_locality", "address_region",
                  "address_country", "postal_code", "first_name", "last_name", "full_name")


def _insert(db: AsyncSession) -> Any:
    return pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


async def ensure_agent(db: AsyncSession, agent_id: str, name: str) -> None:
    await db.execute(_insert(db)(Agent).values(id=agent_id, name=name[:200])
                     .on_conflict_do_nothing())


async def get(db: AsyncSession, session_id: str, *, for_update: bool = False
              ) -> UcpCheckout | None:
    return await db.get(UcpCheckout, session_id, with_for_update=for_update)


def fingerprint(address: dict[str, Any]) -> str:
    canonical = {k: str(address.get(k) or "").strip().lower() for k in ADDRESS_FIELDS}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def addresses_for(db: AsyncSession, email: str) -> list[UcpAddress]:
    rows = await db.scalars(select(UcpAddress).where(UcpAddress.email == email.lower())
                            .order_by(UcpAddress.created_at, UcpAddress.id))
    return list(rows)


async def save_address(db: AsyncSession, email: str, address: dict[str, Any],
                       address_id: str | None = None) -> str:
    """Remember an address for a buyer (once per distinct address): returns its id."""
    fp = fingerprint(address)
    clean = {k: address[k] for k in ADDRESS_FIELDS if address.get(k)}
    await db.execute(_insert(db)(UcpAddress).values(
        id=address_id or new_id("addr"), email=email.lower(), fingerprint=fp, address=clean,
        created_at=utc_now()).on_conflict_do_nothing(index_elements=["email", "fingerprint"]))
    found = await db.scalar(select(UcpAddress.id).where(
        UcpAddress.email == email.lower(), UcpAddress.fingerprint == fp))
    assert found is not None
    return found
