"""Held messages: who released one, when one was listed to the team leaders, the lists' claims.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-21 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "inbound", sa.Column("released_by", sa.String(), nullable=False, server_default="")
    )
    op.add_column("inbound", sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "heldlist",
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("due_at"),
    )


def downgrade() -> None:
    op.drop_table("heldlist")
    # in place, as 0004 does: a copied inbound table could not be dropped under its foreign keys
    op.execute("ALTER TABLE inbound DROP COLUMN listed_at")
    op.execute("ALTER TABLE inbound DROP COLUMN released_by")
