"""Dashboard login: scrypt password hashes, server-side sessions, CSRF tokens.

Separate from the APIs on purpose: agent and merchant API keys never open a dashboard
page, and a dashboard cookie never authorises an API call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import DashboardSession, DashboardUser
from models.base import new_id, utc_now

COOKIE = "rc_dashboard"
SESSION_TTL = timedelta(hours=12)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), dklen=32,
                            **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def create_user(db: AsyncSession, username: str, password: str) -> DashboardUser:
    user = await db.scalar(select(DashboardUser).where(DashboardUser.username == username))
    if user is None:
        user = DashboardUser(id=new_id("usr"), username=username,
                             password_hash=hash_password(password))
        db.add(user)
    else:
        user.password_hash = hash_password(password)
    await db.flush()
    return user


async def login(db: AsyncSession, username: str, password: str) -> tuple[str, str] | None:
    """(session id for the cookie, CSRF token), or None."""
    user = await db.scalar(select(DashboardUser).where(DashboardUser.username == username))
    if user is None:
        verify_password(password, hash_password("timing-equaliser"))
        return None
    if not verify_password(password, user.password_hash):
        return None
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
    else:
        user.password_hash = password_hash
