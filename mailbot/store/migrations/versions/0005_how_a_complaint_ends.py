"""How a complaint ends: merged cases, the ADR scheme's reference, decision and remedy.

The statuses final_response, with_adr, not_a_complaint and merged need no change: the status
column is a VARCHAR, and the cases of today keep theirs (open or resolved).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = ("merged_into", "adr_scheme_ref", "adr_outcome", "remedy", "remedy_told")
_MOMENTS = ("adr_referred_at", "adr_case_file_reminded_at", "adr_outcome_at", "remedy_done_at")
_DAYS = ("adr_case_file_due", "remedy_due")


def upgrade() -> None:
    for name in _TEXT:
        op.add_column("case", sa.Column(name, sa.String(), nullable=False, server_default=""))
    for name in _MOMENTS:
        op.add_column("case", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    for name in _DAYS:
        op.add_column("case", sa.Column(name, sa.Date(), nullable=True))
    op.create_index(op.f("ix_case_merged_into"), "case", ["merged_into"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_case_merged_into"), table_name="case")
    with op.batch_alter_table("case") as batch:
        for name in (*_TEXT, *_MOMENTS, *_DAYS):
            batch.drop_column(name)
