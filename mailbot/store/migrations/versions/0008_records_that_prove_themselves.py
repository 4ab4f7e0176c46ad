"""Records that prove themselves: the chain of each case's records, letters' SHA-256 and
whether they were delivered, and the ADR letters that must go by post.

The cases of today start their chains now, with an event saying so; the records they held
before are sealed by the digest of their list (mail.chain.pre_chain_digest), not chained.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mailbot.mail import chain

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chain_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record", sa.String(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("salt", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.UniqueConstraint("case_id", "seq"),
    )
    for name in ("sha256", "undelivered_reason"):
        op.add_column("outbound", sa.Column(name, sa.String(), nullable=False, server_default=""))
    op.add_column("outbound", sa.Column("undelivered_at", sa.DateTime(timezone=True)))
    op.add_column("case", sa.Column("by_post_due", sa.String(), nullable=False, server_default=""))
    _letters_digested()
    _chains_started(datetime.now(UTC))


def _letters_digested() -> None:
    """The letters already written get the SHA-256 of their bytes (what the server was given)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, raw FROM outbound")).all()
    for row_id, raw in rows:
        digest = hashlib.sha256(bytes(raw or b"")).hexdigest()
        change = sa.text("UPDATE outbound SET sha256 = :d WHERE id = :i")
        bind.execute(change, {"d": digest, "i": row_id})


_EVENT = sa.table(
    "event",
    sa.column("id", sa.Integer()),
    sa.column("case_id", sa.Integer()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("detail", sa.String()),
)
_LINK = sa.table(
    "chain_link",
    *(sa.column(name, sa.String()) for name in ("record", "kind", "salt", "digest", "hash")),
    *(sa.column(name, sa.Integer()) for name in ("case_id", "seq", "record_id")),
    sa.column("at", sa.DateTime(timezone=True)),
)
_TABLES = ((chain.RECEIVED, "inbound"), (chain.LETTER, "outbound"), (chain.EVENT, "event"))


def _chains_started(now: datetime) -> None:
    """Each case's chain: a START link sealing what it held, then an event saying so."""
    bind = op.get_bind()
    stored = now if bind.dialect.name == "postgresql" else now.replace(tzinfo=None)
    for (case_id,) in bind.execute(sa.text('SELECT id FROM "case" ORDER BY id')).all():
        keys = [
            (record, record_id)
            for record, table in _TABLES
            for (record_id,) in bind.execute(
                sa.text(f"SELECT id FROM {table} WHERE case_id = :c"), {"c": case_id}
            )
        ]
        detail = (
            f"{len(keys)} record(s) written before this are sealed by their list, not chained "
            "(migration 0008)"
        )
        event = {"case_id": case_id, "at": stored, "actor": "mailbot", "action": chain.STARTED}
        event_id = bind.execute(
            sa.insert(_EVENT).values(**event, detail=detail).returning(_EVENT.c.id)
        ).scalar_one()
        start = chain.pre_chain_digest(keys)
        first = chain.link_hash("", 1, chain.START, None, now, chain.STARTED, start)
        salt = secrets.token_hex(16)
        digest = chain.content_digest(salt, chain.event_content("mailbot", chain.STARTED, detail))
        second = chain.link_hash(first, 2, chain.EVENT, event_id, now, chain.STARTED, digest)
        common = {"case_id": case_id, "at": stored, "kind": chain.STARTED}
        bind.execute(
            sa.insert(_LINK),
            [
                common | {"seq": 1, "record": chain.START, "record_id": None, "salt": "",
                          "digest": start, "hash": first},
                common | {"seq": 2, "record": chain.EVENT, "record_id": event_id, "salt": salt,
                          "digest": digest, "hash": second},
            ],
        )  # fmt: skip


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM event WHERE action = :a"), {"a": chain.STARTED})
    op.drop_table("chain_link")
    # plain DROP COLUMN (SQLite 3.35 on): a batch would copy "case", which rows refer to
    for name in ("sha256", "undelivered_reason", "undelivered_at"):
        op.drop_column("outbound", name)
    op.drop_column("case", "by_post_due")
