"""Who may call us, as the operator manages them from the command line: agents and their API
keys, merchant API keys, dashboard users. Create refuses a name that is already taken (no
silent second key, no silent password reset) unless the caller says what it wants; list
shows what exists (never a key: only its prefix); revoke/delete takes access away.

The caller owns the transaction (these functions only flush).
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import create_agent_key, create_merchant_key
from api.dashboard.auth import OWASP, ScryptCost, hash_password, revoke_sessions
from models import Agent, AgentApiKey, DashboardSession, DashboardUser, MerchantApiKey
from models.base import new_id, utc_now
from models.errors import Conflict, InvalidRequest, NotFound


class Existing(StrEnum):
    """What to do when the name already has an active key."""

    refuse = "refuse"
    rotate = "rotate"  # issue a new key and revoke the old ones, in one transaction
    add = "add"  # issue another key beside the old ones (revoke those later)


def checked_name(name: str, what: str, longest: int) -> str:
    """A name someone will type and read: not empty, no surrounding blanks, no control
    characters, not too long."""
    if not name.strip():
        raise InvalidRequest(f"the {what} must not be empty", param="name")
    if name != name.strip():
        raise InvalidRequest(f"the {what} must not start or end with blanks", param="name")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidRequest(f"the {what} must not contain control characters", param="name")
    if len(name) > longest:
        raise InvalidRequest(f"the {what} is longer than {longest} characters", param="name")
    return name


@dataclass(frozen=True, slots=True)
class KeyRow:
    owner: str  # agent or merchant-key name
    owner_id: str | None  # the agent's id (None for merchant keys)
    key_id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    owner_id: str | None
    key: str  # shown once, never stored
    revoked: int  # keys revoked by a rotation
    created: bool  # a new agent (merchant keys: a new name)


def _prefixes(rows: list[KeyRow]) -> str:
    return ", ".join(f"{r.prefix}…" for r in rows)


def _taken(what: str, name: str, active: list[KeyRow]) -> Conflict:
    return Conflict(f"{what} {name!r} already has {len(active)} active key(s) "
                    f"({_prefixes(active)}): pass --rotate to issue a new key and revoke "
                    "them, or --add to issue another key beside them",
                    code="already_exists", param="name")


# ---------------------------------------------------------------- agents


async def _agent(db: AsyncSession, name: str) -> Agent | None:
    return await db.scalar(select(Agent).where(Agent.name == name))


async def agent_keys(db: AsyncSession, name: str | None = None) -> list[KeyRow]:
    """Every agent's keys (active and revoked), oldest first; agents without a key too
    (one row with an empty key id)."""
    query = (select(Agent.name, Agent.id, Agent.created_at, AgentApiKey.id,
                    AgentApiKey.key_prefix, AgentApiKey.created_at, AgentApiKey.revoked_at)
             .outerjoin(AgentApiKey, AgentApiKey.agent_id == Agent.id)
             .order_by(Agent.name, AgentApiKey.created_at))
    if name is not None:
        query = query.where(Agent.name == name)
    return [KeyRow(owner=r[0], owner_id=r[1], key_id=r[3] or "", prefix=r[4] or "",
                   created_at=r[5] or r[2], revoked_at=r[6])
            for r in (await db.execute(query)).all()]


async def issue_agent_key(db: AsyncSession, name: str, *, signing_secret: str | None = None,
                          existing: Existing = Existing.refuse) -> IssuedKey:
    """A new agent with its first key; for an agent that exists, only with ``rotate`` or
    ``add`` (an agent whose keys are all revoked gets a new one without either)."""
    checked_name(name, "agent name", 200)
    agent = await _agent(db, name)
    revoked = 0
    if agent is not None:
        active = [k for k in await agent_keys(db, name) if k.key_id and k.revoked_at is None]
        if active and existing == Existing.refuse:
            raise _taken("agent", name, active)
        if existing == Existing.rotate:
            revoked = await _revoke_agent(db, agent.id, None)
    owner, key = await create_agent_key(db, name, signing_secret=signing_secret)
    return IssuedKey(owner.id, key, revoked, agent is None)


async def _revoke_agent(db: AsyncSession, agent_id: str, prefix: str | None) -> int:
    query = (update(AgentApiKey)
             .where(AgentApiKey.agent_id == agent_id, AgentApiKey.revoked_at.is_(None))
             .values(revoked_at=utc_now()))
    if prefix is not None:
        query = query.where(AgentApiKey.key_prefix == prefix)
    result = await db.execute(query.execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def revoke_agent_keys(db: AsyncSession, name: str, prefix: str | None = None) -> int:
    """Revoke the agent's active keys (or the one starting with ``prefix``); the agent and
    its orders stay. Returns how many were revoked."""
    agent = await _agent(db, name)
    if agent is None:
        raise NotFound(f"no agent named {name!r} (see `reelcart agent-key list`)")
    if prefix is not None:
        prefix = _known_prefix(prefix, [k for k in await agent_keys(db, name) if k.key_id])
    return await _revoke_agent(db, agent.id, prefix)


def _known_prefix(prefix: str, keys: list[KeyRow]) -> str:
    wanted = prefix.rstrip("…").rstrip(".")
    matches = {k.prefix for k in keys if k.prefix.startswith(wanted)} if wanted else set()
    if len(matches) != 1:
        raise NotFound(f"no single key starts with {prefix!r} "
                       f"(keys: {_prefixes(keys) or 'none'})", param="key")
    return matches.pop()


# ---------------------------------------------------------------- merchant keys


async def merchant_keys(db: AsyncSession, name: str | None = None) -> list[KeyRow]:
    query = select(MerchantApiKey).order_by(MerchantApiKey.name, MerchantApiKey.created_at)
    if name is not None:
        query = query.where(MerchantApiKey.name == name)
    return [KeyRow(owner=k.name, owner_id=None, key_id=k.id, prefix=k.key_prefix,
                   created_at=k.created_at, revoked_at=k.revoked_at)
            for k in (await db.scalars(query)).all()]


async def issue_merchant_key(db: AsyncSession, name: str,
                             existing: Existing = Existing.refuse) -> IssuedKey:
    checked_name(name, "merchant key name", 200)
    active = [k for k in await merchant_keys(db, name) if k.revoked_at is None]
    revoked = 0
    if active and existing == Existing.refuse:
        raise _taken("merchant key", name, active)
    if active and existing == Existing.rotate:
        revoked = await revoke_merchant_keys(db, name)
    created = not await merchant_keys(db, name)
    key = await create_merchant_key(db, name)
    return IssuedKey(None, key, revoked, created)


async def revoke_merchant_keys(db: AsyncSession, name: str, prefix: str | None = None) -> int:
    keys = await merchant_keys(db, name)
    if not keys:
        raise NotFound(f"no merchant key named {name!r} (see `reelcart merchant-key list`)")
    query = (update(MerchantApiKey)
             .where(MerchantApiKey.name == name, MerchantApiKey.revoked_at.is_(None))
             .values(revoked_at=utc_now()))
    if prefix is not None:
        query = query.where(MerchantApiKey.key_prefix == _known_prefix(prefix, keys))
    result = await db.execute(query.execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- dashboard users


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    created_at: datetime
    sessions: int  # signed in now (unexpired server-side sessions)


async def users(db: AsyncSession) -> list[UserRow]:
    sessions = (select(func.count()).select_from(DashboardSession)
                .where(DashboardSession.user_id == DashboardUser.id,
                       DashboardSession.expires_at > utc_now())
                .scalar_subquery())
    rows = await db.execute(select(DashboardUser.username, DashboardUser.created_at, sessions)
                            .order_by(DashboardUser.username))
    return [UserRow(r[0], r[1], int(r[2] or 0)) for r in rows.all()]


async def user_exists(db: AsyncSession, username: str) -> bool:
    return await db.scalar(select(DashboardUser.id).where(
        DashboardUser.username == username)) is not None


async def add_user(db: AsyncSession, username: str, password: str, *,
                   reset_password: bool = False, cost: ScryptCost = OWASP) -> bool:
    """Create a dashboard user; an existing one only with ``reset_password`` (which ends
    every session of the user). Returns True when the user was created."""
    checked_name(username, "user name", 100)
    user = await db.scalar(select(DashboardUser).where(DashboardUser.username == username))
    if user is not None and not reset_password:
        raise Conflict(f"dashboard user {username!r} already exists: pass --reset-password "
                       "to give it a new password", code="already_exists", param="name")
    if user is None and reset_password:
        raise NotFound(f"no dashboard user named {username!r} to reset "
                       "(leave out --reset-password to create it)", param="name")
    password_hash = await asyncio.to_thread(hash_password, password, cost)
    if user is None:
        db.add(DashboardUser(id=new_id("usr"), username=username, password_hash=password_hash))
    else:
        user.password_hash = password_hash
        await revoke_sessions(db, user.id)
    await db.flush()
    return user is None


async def delete_user(db: AsyncSession, username: str) -> None:
    """Remove the user and end its sessions."""
    user = await db.scalar(select(DashboardUser).where(DashboardUser.username == username))
    if user is None:
        raise NotFound(f"no dashboard user named {username!r} (see `reelcart user list`)",
                       param="name")
    await revoke_sessions(db, user.id)
    await db.delete(user)
    await db.flush()
