"""The initial schema: every table mailbot had when versioned migrations began.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 09:05:56.906117
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("customer_email", sa.String(), nullable=False),
        sa.Column("customer_name", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=64), nullable=False),
        sa.Column("details_found", sa.String(), nullable=False),
        sa.Column("first_response_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("adr_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_interval_days", sa.Integer(), nullable=False),
        sa.Column("update_interval_agreed_by", sa.String(), nullable=False),
        sa.Column("flags", sa.String(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_summary", sa.String(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_staff_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopened_from", sa.String(), nullable=False),
        sa.Column("last_customer_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_overdue_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("adr_notice_decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("adr_notice_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("adr_notice_decision", sa.String(), nullable=False),
        sa.Column("deadlock_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadlock_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadlock_refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadlock_position", sa.String(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_case_customer_email"), "case", ["customer_email"], unique=False)
    op.create_index(op.f("ix_case_next_due_at"), "case", ["next_due_at"], unique=False)
    op.create_index(op.f("ix_case_ref"), "case", ["ref"], unique=True)

    op.create_table(
        "checkpoint",
        sa.Column("folder", sa.String(), nullable=False),
        sa.Column("uidvalidity", sa.Integer(), nullable=False),
        sa.Column("last_uid", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("folder"),
    )
    op.create_table(
        "daemonlock",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("heartbeat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "refcounter",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_event_case_id"), "event", ["case_id"], unique=False)

    op.create_table(
        "inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("disposition", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("from_address", sa.String(), nullable=False),
        sa.Column("from_name", sa.String(), nullable=False),
        sa.Column("in_reply_to", sa.String(), nullable=False),
        sa.Column("references", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("parser", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "sha256"),
    )
    op.create_index(op.f("ix_inbound_case_id"), "inbound", ["case_id"], unique=False)
    op.create_index(op.f("ix_inbound_message_id"), "inbound", ["message_id"], unique=False)

    op.create_table(
        "outbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("to_address", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.Column("smtp_reply", sa.String(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_outbound_case_id"), "outbound", ["case_id"], unique=False)
    op.create_index("ix_outbound_due", "outbound", ["status", "next_attempt_at"], unique=False)
    op.create_index(op.f("ix_outbound_message_id"), "outbound", ["message_id"], unique=True)
    op.create_index(op.f("ix_outbound_to_address"), "outbound", ["to_address"], unique=False)

    op.create_table(
        "suppression",
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case.id"],
        ),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inbound_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["inbound.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_attachment_inbound_id"), "attachment", ["inbound_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_attachment_inbound_id"), table_name="attachment")

    op.drop_table("attachment")
    op.drop_table("suppression")
    op.drop_index(op.f("ix_outbound_to_address"), table_name="outbound")
    op.drop_index(op.f("ix_outbound_message_id"), table_name="outbound")
    op.drop_index("ix_outbound_due", table_name="outbound")
    op.drop_index(op.f("ix_outbound_case_id"), table_name="outbound")

    op.drop_table("outbound")
    op.drop_index(op.f("ix_inbound_message_id"), table_name="inbound")
    op.drop_index(op.f("ix_inbound_case_id"), table_name="inbound")

    op.drop_table("inbound")
    op.drop_index(op.f("ix_event_case_id"), table_name="event")

    op.drop_table("event")
    op.drop_table("refcounter")
    op.drop_table("daemonlock")
    op.drop_table("checkpoint")
    op.drop_index(op.f("ix_case_ref"), table_name="case")
    op.drop_index(op.f("ix_case_next_due_at"), table_name="case")
    op.drop_index(op.f("ix_case_customer_email"), table_name="case")

    op.drop_table("case")
