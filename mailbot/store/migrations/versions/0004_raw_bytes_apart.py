"""A received message's raw bytes in a table of their own, apart from what it turned out to be.

SQLite rewrites a row whole when any column changes, its overflow pages with it: with the
bytes on the inbound row, processing a message wrote them out again (5.6 MB a batch of 100).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_raw",
        sa.Column("inbound_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["inbound_id"], ["inbound.id"]),
        sa.PrimaryKeyConstraint("inbound_id"),
    )
    op.execute("INSERT INTO inbound_raw (inbound_id, raw) SELECT id, raw FROM inbound")
    # not batch mode: SQLite (3.35 and later) drops a column in place, where a copied table
    # could not be dropped under the foreign keys that point at it
    op.execute("ALTER TABLE inbound DROP COLUMN raw")


def downgrade() -> None:
    op.add_column("inbound", sa.Column("raw", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE inbound SET raw = (SELECT raw FROM inbound_raw"
        " WHERE inbound_raw.inbound_id = inbound.id)"
    )
    op.drop_table("inbound_raw")
