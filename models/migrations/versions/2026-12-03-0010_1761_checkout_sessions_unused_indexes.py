"""checkout_sessions: drop the status and expires_at indexes no query uses

No statement filters or sorts checkout sessions by ``status`` or ``expires_at`` (a
session's expiry is checked on the row when it is loaded), so both indexes only cost
every create, update and complete an index entry to write (issue 16: a create's commit
is its costliest single step). ``agent_id`` keeps its index: it backs the foreign key.

Revision ID: 1761
Revises: 1741
Create Date: 2026-12-03 00:10:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '1761'
down_revision: str | None = '1741'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkout_sessions") as batch:
        batch.drop_index("ix_checkout_sessions_status")
        batch.drop_index("ix_checkout_sessions_expires_at")


def downgrade() -> None:
    with op.batch_alter_table("checkout_sessions") as batch:
        batch.create_index("ix_checkout_sessions_expires_at", ["expires_at"], unique=False)
        batch.create_index("ix_checkout_sessions_status", ["status"], unique=False)
