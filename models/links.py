from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class ShoppableLink(Base):
    """A short link ``/v/{code}`` for one (video, product, channel): redirects to the
    product (or a configured destination) with the video's attribution parameters."""

    __tablename__ = "shoppable_links"
    __table_args__ = (UniqueConstraint("video_id", "product_id", "channel"),)

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"),
                                          index=True)
    product_id: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    destination_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class LinkTouch(Base):
    """A click through a shoppable link or a pixel impression, by one visitor.

    ``visitor`` is the SHA-256 of the random first-party cookie value: no IP address, no
    user agent, nothing that names a person is stored. ``id`` of a click is the ``rc_click``
    parameter on the destination URL, so a checkout can name the very click."""

    __tablename__ = "link_touches"
    __table_args__ = (Index("ix_link_touches_visitor_at", "visitor", "touched_at"),
                      Index("ix_link_touches_video_kind_at", "video_id", "kind", "touched_at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # TouchType.click | TouchType.view
    link_code: Mapped[str | None] = mapped_column(String(16))
    video_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    visitor: Mapped[str] = mapped_column(String(64))
    touched_at: Mapped[datetime] = mapped_column()
