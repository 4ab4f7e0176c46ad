"""Trust under faults: duplicate key without trace headers, held letters, other customer addresses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mailbot.mail.fingerprint import content_sha256

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGE = 500  # raw bytes read per query while the duplicate keys are computed


def upgrade() -> None:
    op.add_column(
        "case", sa.Column("customer_addresses", sa.String(), nullable=False, server_default="")
    )
    op.add_column(
        "case", sa.Column("set_aside_reason", sa.String(), nullable=False, server_default="")
    )
    op.add_column(
        "inbound", sa.Column("content_sha256", sa.String(), nullable=False, server_default="")
    )
    op.add_column(
        "outbound", sa.Column("first_refused_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("suppression", sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "suppression", sa.Column("lifted_by", sa.String(), nullable=False, server_default="")
    )
    _compute_content_keys()
    op.create_index("ix_inbound_content", "inbound", ["message_id", "content_sha256"], unique=True)


def _compute_content_keys() -> None:
    """Every stored message's duplicate key; copies already processed as two keep two keys."""
    bind = op.get_bind()
    inbound = sa.table(
        "inbound",
        sa.column("id", sa.Integer),
        sa.column("message_id", sa.String),
        sa.column("sha256", sa.String),
        sa.column("raw", sa.LargeBinary),
        sa.column("content_sha256", sa.String),
    )
    seen: set[tuple[str, str]] = set()
    last = 0
    while True:
        page = bind.execute(
            sa.select(inbound.c.id, inbound.c.message_id, inbound.c.sha256, inbound.c.raw)
            .where(inbound.c.id > last)
            .order_by(inbound.c.id)
            .limit(_PAGE)
        ).all()
        if not page:
            return
        changes = []
        for row_id, message_id, sha256, raw in page:
            key = content_sha256(raw)
            if (message_id, key) in seen:
                key = sha256  # the daemon took them for two messages: they stay two
            seen.add((message_id, key))
            changes.append({"row_id": row_id, "key": key})
        bind.execute(
            inbound.update()
            .where(inbound.c.id == sa.bindparam("row_id"))
            .values(content_sha256=sa.bindparam("key")),
            changes,
        )
        last = page[-1][0]


def downgrade() -> None:
    op.drop_index("ix_inbound_content", table_name="inbound")
    with op.batch_alter_table("suppression") as batch:
        batch.drop_column("lifted_by")
        batch.drop_column("lifted_at")
    with op.batch_alter_table("outbound") as batch:
        batch.drop_column("first_refused_at")
    with op.batch_alter_table("inbound") as batch:
        batch.drop_column("content_sha256")
    with op.batch_alter_table("case") as batch:
        batch.drop_column("set_aside_reason")
        batch.drop_column("customer_addresses")
