"""Cases and messages as admins read them: every case, one case's records, the quarantine."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from mailbot.store.models import Attachment, Case, Disposition, Event, Inbound, Outbound


def all_cases(session: Session) -> list[Case]:
    """Every case, in the order they were opened."""
    return list(session.exec(select(Case).order_by(col(Case.id))))


def merged_into(session: Session, ref: str) -> list[Case]:
    """The cases merged into case REF, in the order they were opened."""
    query = select(Case).where(Case.merged_into == ref).order_by(col(Case.id))
    return list(session.exec(query))


def case_messages(session: Session, case_id: int | None) -> list[Inbound]:
    """The messages received on case CASE_ID, in the order they were stored."""
    query = select(Inbound).where(Inbound.case_id == case_id).order_by(col(Inbound.id))
    return list(session.exec(query))


def case_letters(session: Session, case_id: int | None) -> list[Outbound]:
    """The letters written on case CASE_ID, in the order they were queued."""
    query = select(Outbound).where(Outbound.case_id == case_id).order_by(col(Outbound.id))
    return list(session.exec(query))


def case_events(session: Session, case_id: int | None) -> list[Event]:
    """The events of case CASE_ID, in the order they were recorded."""
    query = select(Event).where(Event.case_id == case_id).order_by(col(Event.id))
    return list(session.exec(query))


def message_attachments(session: Session, inbound_ids: Sequence[int]) -> list[Attachment]:
    """The attachments of the messages INBOUND_IDS, in the order they were stored."""
    if not inbound_ids:
        return []
    query = (
        select(Attachment)
        .where(col(Attachment.inbound_id).in_(inbound_ids))
        .order_by(col(Attachment.id))
    )
    return list(session.exec(query))


def quarantined_messages(session: Session) -> list[Inbound]:
    """The messages set aside in the quarantine, in the order they were stored."""
    query = select(Inbound).where(Inbound.disposition == Disposition.QUARANTINED)
    return list(session.exec(query.order_by(col(Inbound.id))))


def quarantined_message(session: Session, inbound_id: int) -> Inbound | None:
    """Message INBOUND_ID if it is in the quarantine (None: no such message, or not there)."""
    found = session.get(Inbound, inbound_id)
    return found if found is not None and found.disposition == Disposition.QUARANTINED else None
