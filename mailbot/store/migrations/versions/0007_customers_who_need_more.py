"""Customers who need more: support needs on the case, and a subject access request's clock.

Needs are a JSON list in a text column (empty: none); the flag data_protection needs no change
(the flags column is text) and the role dpo none either (roles are settings).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = ("needs", "sar_told")
_MOMENTS = ("sar_requested_at", "sar_extended_at", "sar_done_at")
_DAYS = ("sar_due",)


def upgrade() -> None:
    for name in _TEXT:
        op.add_column("case", sa.Column(name, sa.String(), nullable=False, server_default=""))
    for name in _MOMENTS:
        op.add_column("case", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    for name in _DAYS:
        op.add_column("case", sa.Column(name, sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case") as batch:
        for name in (*_TEXT, *_MOMENTS, *_DAYS):
            batch.drop_column(name)
