"""The customer's personal data: where it is held, and the statements that erase it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import Session, col, or_, select

from mailbot.store.models import (
    Attachment,
    Case,
    CaseStatus,
    Event,
    Inbound,
    InboundRaw,
    Outbound,
    Suppression,
)


def customer_cases(session: Session, email: str) -> list[Case]:
    """The cases whose customer is EMAIL (their own address, or one staff accepted as theirs)."""
    email = email.strip().lower()
    found = session.exec(
        select(Case)
        .where(
            or_(
                col(Case.customer_email) == email,
                col(Case.customer_addresses).contains(email),
            )
        )
        .order_by(col(Case.id))
    )
    return [case for case in found if email in case.addresses()]


def lock_cases(session: Session, cases: Iterable[Case]) -> None:
    """CASES read again and locked for this transaction (PostgreSQL: nobody changes them)."""
    for case in cases:
        session.refresh(case, with_for_update=True)


def cases_to_purge(session: Session, resolved_before: datetime) -> list[Case]:
    """The cases resolved before RESOLVED_BEFORE whose personal data is still held, locked."""
    query = (
        select(Case)
        .where(
            Case.status == CaseStatus.RESOLVED,
            col(Case.resolved_at) < resolved_before,
            col(Case.personal_data_erased_at).is_(None),
        )
        .order_by(col(Case.id))
        .with_for_update()
    )
    return list(session.exec(query))


def last_event_of(session: Session, case_id: int | None, actions: Collection[str]) -> Event | None:
    """The last in time of CASE_ID's events that is one of ACTIONS."""
    query = (
        select(Event)
        .where(Event.case_id == case_id, col(Event.action).in_(actions))
        .order_by(col(Event.at).desc())
    )
    return session.exec(query).first()


def received_with_bytes(session: Session, case_id: int | None) -> list[tuple[Inbound, bytes]]:
    """The messages received on case CASE_ID, each with its bytes as received (b"": erased)."""
    query = (
        select(Inbound, InboundRaw.raw)
        .join(InboundRaw, col(InboundRaw.inbound_id) == col(Inbound.id))
        .where(Inbound.case_id == case_id)
    )
    return list(session.exec(query))


def held_on_case(session: Session, case_id: int | None) -> tuple[int, int, int]:
    """What case CASE_ID holds: (messages received, letters written, attachments)."""
    inbound = session.exec(select(Inbound.id).where(Inbound.case_id == case_id)).all()
    outbound = session.exec(select(Outbound.id).where(Outbound.case_id == case_id)).all()
    files = session.exec(select(Attachment.id).where(col(Attachment.inbound_id).in_(inbound))).all()
    return len(inbound), len(outbound), len(files)


def erase_bytes(session: Session, inbound_ids: Sequence[int | None]) -> None:
    """The bytes of the received messages INBOUND_IDS blanked, their attachments deleted."""
    session.execute(
        update(InboundRaw).where(col(InboundRaw.inbound_id).in_(inbound_ids)).values(raw=b"")
    )
    session.execute(delete(Attachment).where(col(Attachment.inbound_id).in_(inbound_ids)))


def uncased_received(session: Session, addresses: Collection[str]) -> list[Inbound]:
    """The messages from ADDRESSES that are on no case (a robot's, one too large)."""
    query = select(Inbound).where(
        col(Inbound.case_id).is_(None), col(Inbound.from_address).in_(addresses)
    )
    return list(session.exec(query))


def uncased_letters(session: Session, addresses: Collection[str]) -> list[Outbound]:
    """The letters to ADDRESSES that are on no case (about a message too large)."""
    query = select(Outbound).where(
        col(Outbound.case_id).is_(None), col(Outbound.to_address).in_(addresses)
    )
    return list(session.exec(query))


def forget_case_bounces(session: Session, case_id: int | None) -> None:
    """Delete the bounce suppressions case CASE_ID caused."""
    session.execute(delete(Suppression).where(col(Suppression.case_id) == case_id))


def forget_bounces(session: Session, addresses: Collection[str]) -> None:
    """Delete the bounce suppressions of ADDRESSES."""
    session.execute(delete(Suppression).where(col(Suppression.address).in_(addresses)))
