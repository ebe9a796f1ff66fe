from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class Agent(Base):
    """An AI agent platform (e.g. ChatGPT) allowed to call the checkout API."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Shared secret for verifying the agent's request ``Signature`` (HMAC needs the raw secret).
    signing_secret: Mapped[str | None] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    # The agent's ACP Feed API (we push our catalog to it).
    feed_api_url: Mapped[str | None] = mapped_column(String(2000))
    feed_api_token: Mapped[str | None] = mapped_column(String(500))
    feed_id: Mapped[str | None] = mapped_column(String(200))
    feed_target_country: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class AgentApiKey(Base):
    """A bearer key issued to an agent. Only the SHA-256 of the key is stored."""

    __tablename__ = "agent_api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column()
