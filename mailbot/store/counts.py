"""How much there is now: the counts the health check and the metrics read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailbot.store.models import (
    Case,
    CaseStatus,
    Disposition,
    Inbound,
    Outbound,
    OutboundStatus,
    Suppression,
)


def open_case_count(session: Session) -> int:
    return session.exec(
        select(func.count(col(Case.id))).where(Case.status == CaseStatus.OPEN)
    ).one()


def letter_count(session: Session, status: OutboundStatus) -> int:
    """How many letters in the outbox are STATUS (queued: not yet sent)."""
    return session.exec(select(func.count(col(Outbound.id))).where(Outbound.status == status)).one()


def oldest_queued_at(session: Session, now: datetime) -> datetime | None:
    """When the longest waiting of the queued letters already queued by NOW was queued."""
    query = select(func.min(col(Outbound.queued_at))).where(
        Outbound.status == OutboundStatus.QUEUED, col(Outbound.queued_at) <= now
    )
    return session.exec(query).one()


def quarantined_count(session: Session) -> int:
    query = select(func.count(col(Inbound.id))).where(
        Inbound.disposition == Disposition.QUARANTINED
    )
    return session.exec(query).one()


def bounced_count(session: Session) -> int:
    """How many addresses bounced and get no automated mail (their suppression not lifted)."""
    query = select(func.count(col(Suppression.address))).where(col(Suppression.lifted_at).is_(None))
    return session.exec(query).one()


def overdue_first_response_count(session: Session, now: datetime) -> int:
    """How many open cases are past their first response's due time with no reply from staff."""
    query = select(func.count(col(Case.id))).where(
        Case.status == CaseStatus.OPEN,
        col(Case.first_staff_reply_at).is_(None),
        col(Case.first_response_due) < now,
    )
    return session.exec(query).one()
