"""Messages received: their bytes kept first, claimed for processing, and what they became."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from mailbot.store.models import Attachment, Case, Inbound, InboundRaw

# what a newly stored message holds beside its bytes (the model's defaults)
_INBOUND_DEFAULTS: dict[str, object] = {
    name: field.default
    for name, field in Inbound.model_fields.items()
    if name != "id" and not field.is_required()
}


def messages_by_message_id(session: Session, message_ids: Iterable[str]) -> list[Inbound]:
    """The stored messages with any of MESSAGE_IDS."""
    query = select(Inbound).where(col(Inbound.message_id).in_(set(message_ids)))
    return list(session.exec(query))


def keep_messages(
    session: Session, rows: Sequence[dict[str, object]], raws: Sequence[bytes]
) -> list[int]:
    """Store ROWS (Inbound's fields) and their RAWS bytes in one INSERT each: their ids."""
    inserted = session.execute(
        insert(Inbound).returning(col(Inbound.id), sort_by_parameter_order=True),
        [_INBOUND_DEFAULTS | row for row in rows],
    )
    ids = list(inserted.scalars())
    session.execute(
        insert(InboundRaw),
        [{"inbound_id": i, "raw": raw} for i, raw in zip(ids, raws, strict=True)],
    )
    return ids


def claim_messages(
    session: Session, inbound_ids: Sequence[int]
) -> dict[int, tuple[Inbound, bytes]]:
    """The stored messages to process, locked, with their raw bytes (each is read next); one
    another daemon holds is left out."""
    query = (
        select(Inbound, InboundRaw.raw)
        .join(InboundRaw, col(InboundRaw.inbound_id) == col(Inbound.id))
        .where(col(Inbound.id).in_(inbound_ids))
        .with_for_update(skip_locked=True)  # outbox.CLAIM: SQLite has one writer anyway
    )
    return {row.id: (row, raw) for row, raw in session.exec(query) if row.id is not None}


def case_ref(session: Session, case_id: int | None) -> str | None:
    """The reference of case CASE_ID (None: no case)."""
    case = session.get(Case, case_id) if case_id else None
    return case.ref if case else None


def message(session: Session, inbound_id: int) -> Inbound:
    found = session.get(Inbound, inbound_id)
    assert found is not None, inbound_id
    return found


def keep_attachments(
    session: Session, inbound_id: int, attachments: Sequence[dict[str, object]], again: bool
) -> None:
    """ATTACHMENTS of the message INBOUND_ID in one INSERT, no ORM object holding a payload;
    AGAIN: it was parsed before (a retry), and its earlier attachments go first."""
    with session.no_autoflush:  # the message's fields are written with the rest of it
        if again:
            session.execute(delete(Attachment).where(col(Attachment.inbound_id) == inbound_id))
        if attachments:
            session.execute(insert(Attachment), list(attachments))
