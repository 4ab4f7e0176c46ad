"""Reports and personal data: the weekly digest's claim per week, erasure on the case.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "case", sa.Column("personal_data_erased_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "weeklydigest",
        sa.Column("week_of", sa.Date(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week_of"),
    )


def downgrade() -> None:
    op.drop_table("weeklydigest")
    with op.batch_alter_table("case") as batch:
        batch.drop_column("personal_data_erased_at")
