"""Held messages: those the mail platform called spam or forged, their release and their lists."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from mailbot.store.models import Disposition, HeldList, Inbound


def held_messages(session: Session) -> list[Inbound]:
    """The messages held now, in the order they were stored."""
    query = select(Inbound).where(Inbound.disposition == Disposition.HELD)
    return list(session.exec(query.order_by(col(Inbound.id))))


def held_message(session: Session, inbound_id: int) -> Inbound | None:
    """Message INBOUND_ID if it is held (None: no such message, or not held)."""
    found = session.get(Inbound, inbound_id)
    return found if found is not None and found.disposition == Disposition.HELD else None


def held_among(session: Session, inbound_ids: Iterable[int]) -> frozenset[int]:
    """Which of INBOUND_IDS are held messages."""
    wanted = set(inbound_ids)
    if not wanted:
        return frozenset()
    query = select(Inbound.id).where(
        col(Inbound.id).in_(wanted), Inbound.disposition == Disposition.HELD
    )
    return frozenset(i for i in session.exec(query) if i is not None)


def release(session: Session, inbound_id: int, by: str) -> Inbound | None:
    """Release held message INBOUND_ID (BY: who): stored as received again, to be processed as
    on its arrival; its reason (why it was held) stays. None if it is not held."""
    found = held_message(session, inbound_id)
    if found is None:
        return None
    found.disposition, found.released_by = Disposition.RECEIVED, by
    session.add(found)
    return found


def unlisted_held(session: Session) -> list[Inbound]:
    """The messages held since the last list to the team leaders, oldest first."""
    query = select(Inbound).where(
        Inbound.disposition == Disposition.HELD, col(Inbound.listed_at).is_(None)
    )
    return list(session.exec(query.order_by(col(Inbound.id))))


def list_claimed(session: Session, due_at: datetime) -> bool:
    """Whether the list due at DUE_AT was claimed (sent, or found with nothing to send)."""
    return session.get(HeldList, due_at) is not None


def claim_list(session: Session, due_at: datetime, now: datetime, listed: list[Inbound]) -> None:
    """Claim the list due at DUE_AT in this transaction, LISTED marked as in it: the row is the
    claim, so a second writer's fails (connection.conflict), here or when it commits."""
    session.add(HeldList(due_at=due_at, queued_at=now, messages=len(listed)))
    for message in listed:
        message.listed_at = now
        session.add(message)
    session.flush()


def held_received_between(
    session: Session, start: datetime, end: datetime
) -> list[tuple[str, str, int]]:
    """Messages received from START up to END (excluded) that were held: (reason, released_by,
    how many), held now or released since."""
    query = (
        select(Inbound.reason, Inbound.released_by, func.count(col(Inbound.id)))
        .where(
            col(Inbound.received_at) >= start,
            col(Inbound.received_at) < end,
            or_(col(Inbound.disposition) == Disposition.HELD, col(Inbound.released_by) != ""),
        )
        .group_by(col(Inbound.reason), col(Inbound.released_by))
    )
    return [(reason, by, count) for reason, by, count in session.exec(query)]
