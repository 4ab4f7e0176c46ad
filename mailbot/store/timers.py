"""The timers' cases: those due, each claimed in its turn, and those set aside after an error."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from mailbot.store.db import CLAIM
from mailbot.store.models import Case


def due_cases(session: Session, now: datetime) -> list[int]:
    """The ids of the cases whose next due time has come by NOW, the longest due first."""
    query = select(Case.id).where(col(Case.next_due_at) <= now).order_by(col(Case.next_due_at))
    return [case_id for case_id in session.exec(query) if case_id is not None]


def claim_case(session: Session, case_id: int) -> Case | None:
    """Case CASE_ID, locked for this transaction (None: gone, or another daemon has it)."""
    return session.get(Case, case_id, with_for_update=CLAIM)


def set_case_aside(session: Session, case_id: int, reason: str) -> str:
    """Take case CASE_ID out of the timers for REASON, by a plain statement (its row may be
    what broke): its reference."""
    ref = session.exec(select(Case.ref).where(col(Case.id) == case_id)).one()
    session.execute(
        update(Case)
        .where(col(Case.id) == case_id)
        .values(set_aside_reason=reason, next_due_at=None)
    )
    return ref


def cases_set_aside(session: Session) -> list[Case]:
    """The cases the timers set aside after an error, until an admin puts them back."""
    return list(session.exec(select(Case).where(Case.set_aside_reason != "")))
