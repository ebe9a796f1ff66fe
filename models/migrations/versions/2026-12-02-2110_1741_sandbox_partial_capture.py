"""sandbox PSP: manual capture, partial or whole

A sandbox charge made with ``REELCART_SANDBOX_CAPTURE_METHOD=manual`` is only authorised
(``requires_capture``) until the merchant captures it, as a Stripe PaymentIntent with
``capture_method=manual``: ``amount_captured`` is what was captured (at most ``amount``,
the rest is released) and ``captured_at`` when. Both stay NULL for charges captured at
once (their whole ``amount`` at ``created_at``).

Revision ID: 1741
Revises: 1641
Create Date: 2026-12-02 21:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1741'
down_revision: str | None = '1641'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sandbox_charges") as batch:
        batch.add_column(sa.Column("amount_captured", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sandbox_charges") as batch:
        batch.drop_column("captured_at")
        batch.drop_column("amount_captured")
