"""What the manager's report and the weekly digest read: cases, their events, the weeks sent."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime

from sqlmodel import Session, col, select

from mailbot.store.models import Case, CaseStatus, Event, WeeklyDigest

_PAGE = 500  # case ids per query (bound parameters are limited)


def cases_received_between(session: Session, start: datetime, end: datetime) -> list[Case]:
    """The cases received from START up to END (excluded), in the order they came."""
    query = (
        select(Case)
        .where(col(Case.received_at) >= start, col(Case.received_at) < end)
        .order_by(col(Case.received_at), col(Case.id))
    )
    return list(session.exec(query))


def events_of_cases(
    session: Session, case_ids: Sequence[int], actions: Collection[str], before: datetime
) -> dict[int | None, list[Event]]:
    """The events of CASE_IDS that are one of ACTIONS, before BEFORE: each case's, oldest first."""
    found: dict[int | None, list[Event]] = {}
    for start in range(0, len(case_ids), _PAGE):
        rows = session.exec(
            select(Event)
            .where(
                col(Event.case_id).in_(case_ids[start : start + _PAGE]),
                col(Event.action).in_(actions),
                col(Event.at) < before,
            )
            .order_by(col(Event.at), col(Event.id))
        )
        for event in rows:
            found.setdefault(event.case_id, []).append(event)
    return found


def open_cases(session: Session) -> list[Case]:
    return list(session.exec(select(Case).where(Case.status == CaseStatus.OPEN)))


def digest_queued(session: Session, monday: date) -> bool:
    """Whether the digest of the week of MONDAY was queued (or is being, in this transaction)."""
    return session.get(WeeklyDigest, monday) is not None


def claim_digest(session: Session, monday: date, now: datetime) -> None:
    """Claim the week of MONDAY's digest at NOW in this transaction: the row is the claim, so a
    second writer's fails (connection.conflict), here or when it commits."""
    session.add(WeeklyDigest(week_of=monday, queued_at=now))
    session.flush()
