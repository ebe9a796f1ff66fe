"""Dashboard login: scrypt password hashes (OWASP cost, upgraded at login), server-side
sessions (ended by a password change), CSRF tokens (the login form too).

Separate from the APIs on purpose: agent and merchant API keys never open a dashboard
page, and a dashboard cookie never authorises an API call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import DashboardSession, DashboardUser
from models.base import new_id, utc_now

COOKIE = "rc_dashboard"
LOGIN_CSRF_COOKIE = "rc_login_csrf"
SESSION_TTL = timedelta(hours=12)


@dataclass(frozen=True, order=True)
class ScryptCost:
    log2_n: int = 17
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        return 256 * self.r * (2 ** self.log2_n) + 2**20  # 128 r N bytes, plus slack

    def encode(self) -> str:
        return f"ln={self.log2_n},r={self.r},p={self.p}"


# OWASP Password Storage Cheat Sheet: scrypt with N=2^17 (128 MiB), r=8, p=1.
OWASP = ScryptCost()
LEGACY = ScryptCost(14, 8, 1)  # hashes written as scrypt$salt$digest used N=2^14
_HASH_SLOTS = threading.BoundedSemaphore(2)  # each hash takes 128 MiB: at most two at once


def _scrypt(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    with _HASH_SLOTS:
        return hashlib.scrypt(password.encode(), salt=salt, n=2**cost.log2_n, r=cost.r,
                              p=cost.p, dklen=32, maxmem=cost.maxmem)


def hash_password(password: str, cost: ScryptCost = OWASP) -> str:
    """``scrypt$ln=17,r=8,p=1$<salt>$<digest>`` (base64): the cost travels with the hash."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, cost)
    return (f"scrypt${cost.encode()}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def _parse(stored: str) -> tuple[ScryptCost, bytes, bytes] | None:
    parts = stored.split("$")
    try:
        if len(parts) == 3 and parts[0] == "scrypt":
            return LEGACY, base64.b64decode(parts[1]), base64.b64decode(parts[2])
        if len(parts) == 4 and parts[0] == "scrypt":
            params = dict(item.split("=", 1) for item in parts[1].split(","))
            cost = ScryptCost(int(params["ln"]), int(params["r"]), int(params["p"]))
            if not (10 <= cost.log2_n <= 22 and 1 <= cost.r <= 32 and 1 <= cost.p <= 16):
                return None
            return cost, base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except (ValueError, KeyError, binascii.Error):
        return None
    return None


def verify_password(password: str, stored: str) -> bool:
    parsed = _parse(stored)
    if parsed is None:
        return False
    cost, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, cost), digest)


def needs_rehash(stored: str, target: ScryptCost) -> bool:
    """True when the stored hash is cheaper than ``target`` (upgraded at the next login)."""
    parsed = _parse(stored)
    return parsed is None or parsed[0] < target


@lru_cache(maxsize=4)
def _dummy_hash(cost: ScryptCost) -> str:
    return hash_password(secrets.token_urlsafe(16), cost)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def revoke_sessions(db: AsyncSession, user_id: str) -> None:
    await db.execute(delete(DashboardSession).where(DashboardSession.user_id == user_id))


async def create_user(db: AsyncSession, username: str, password: str,
                      cost: ScryptCost = OWASP) -> DashboardUser:
    """Create a user, or set a new password (which ends every session of the user)."""
    password_hash = await asyncio.to_thread(hash_password, password, cost)
    user = await db.scalar(select(DashboardUser).where(DashboardUser.username == username))
    if user is None:
        user = DashboardUser(id=new_id("usr"), username=username, password_hash=password_hash)
        db.add(user)
    else:
        user.password_hash = password_hash
        await revoke_sessions(db, user.id)
    await db.flush()
    return user


async def check_credentials(sessionmaker: async_sessionmaker[AsyncSession], username: str,
                            password: str, target: ScryptCost) -> DashboardUser | None:
    """The user when the password is right. The same work either way: an unknown user is
    checked against a dummy hash of the target cost (no enumeration by timing). Hashing
    runs in a thread, outside any transaction."""
    async with sessionmaker() as db:
        user = await db.scalar(select(DashboardUser).where(DashboardUser.username == username))
    stored = user.password_hash if user is not None else await asyncio.to_thread(
        _dummy_hash, target)
    ok = await asyncio.to_thread(verify_password, password, stored)
    return user if ok and user is not None else None


async def start_session(db: AsyncSession, user: DashboardUser, password: str,
                        target: ScryptCost) -> tuple[str, str]:
    """(session id for the cookie, CSRF token). Upgrades a hash cheaper than ``target``
    (same password: other sessions stay)."""
    if needs_rehash(user.password_hash, target):
        new_hash = await asyncio.to_thread(hash_password, password, target)
        await db.execute(update(DashboardUser).where(DashboardUser.id == user.id)
                         .values(password_hash=new_hash))
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = utc_now()
    db.add(DashboardSession(id_hash=_hash(session_id), user_id=user.id, csrf_token=csrf,
                            created_at=now, expires_at=now + SESSION_TTL))
    await db.execute(delete(DashboardSession).where(DashboardSession.expires_at < now))
    return session_id, csrf


async def current(db: AsyncSession, session_id: str | None
                  ) -> tuple[DashboardUser, DashboardSession] | None:
    if not session_id or len(session_id) > 200:
        return None
    row = (await db.execute(select(DashboardUser, DashboardSession)
                            .join(DashboardSession, DashboardSession.user_id == DashboardUser.id)
                            .where(DashboardSession.id_hash == _hash(session_id),
                                   DashboardSession.expires_at > utc_now()))).first()
    return (row[0], row[1]) if row else None


async def logout(db: AsyncSession, session_id: str | None) -> None:
    if session_id:
        await db.execute(delete(DashboardSession).where(
            DashboardSession.id_hash == _hash(session_id)))


async def ensure_user_hash(db: AsyncSession, username: str, password_hash: str) -> None:
    user = await db.scalar(select(DashboardUser).where(DashboardUser.username == username))
    if user is None:
        db.add(DashboardUser(id=new_id("usr"), username=username, password_hash=password_hash))
    elif user.password_hash != password_hash:  # a new password ends the old sessions
        user.password_hash = password_hash
        await revoke_sessions(db, user.id)
