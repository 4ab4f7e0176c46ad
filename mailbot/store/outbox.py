"""The outbox's queries: letters queued, capped, claimed for sending, answered, given up."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection as Connection
from sqlalchemy import bindparam, func, insert, update
from sqlalchemy import select as sql_select
from sqlmodel import col, select

from mailbot.mail import chain as chained
from mailbot.store import chain, db
from mailbot.store.db import Engine, Session
from mailbot.store.models import MessageKind, Outbound, OutboundStatus, Suppression

# automated answers to inbound mail: the ones a loop or a flood would multiply
CAPPED = frozenset(
    {
        MessageKind.ACKNOWLEDGEMENT,
        MessageKind.STAFF_CONFIRMATION,
        MessageKind.STAFF_ERROR,
        MessageKind.TOO_LARGE,
    }
)
GIVE_UP_PAGE = 500  # refused letters looked at per query (bound parameters are limited)

Due = list[tuple[int, str | None]]  # due rows: id and the case's reference
# a claimed letter: kind, Message-ID, address, bytes, attempts so far, first refusal
ClaimedRow = tuple[str, str, str, bytes, int, datetime | None]

# built once: one or two letters go with every message, each one claimed and answered
_OUTBOUND = Outbound.__table__  # type: ignore[attr-defined]  # SQLModel's table
_QUEUE = insert(_OUTBOUND).returning(_OUTBOUND.c.id)
_CAPPED_COUNT = sql_select(func.count(_OUTBOUND.c.id)).where(
    _OUTBOUND.c.to_address == bindparam("address"),
    _OUTBOUND.c.kind.in_(CAPPED),
    _OUTBOUND.c.status != OutboundStatus.HELD,
    _OUTBOUND.c.queued_at > bindparam("since"),
)
# a letter's answer, recorded: its SET clause the columns each execution names
_RECORD = update(_OUTBOUND).where(_OUTBOUND.c.id == bindparam("row_id"))
_CLAIM = (
    sql_select(
        _OUTBOUND.c.kind,
        _OUTBOUND.c.message_id,
        _OUTBOUND.c.to_address,
        _OUTBOUND.c.raw,
        _OUTBOUND.c.attempts,
        _OUTBOUND.c.first_refused_at,
    )
    .where(_OUTBOUND.c.id == bindparam("row_id"), _OUTBOUND.c.status == OutboundStatus.QUEUED)
    .with_for_update(skip_locked=True)  # CLAIM: another daemon passes over it
)


def queue_letter(session: Session, row: dict[str, Any]) -> None:
    """Write ROW (Outbound's columns but id, attempts and the answer's) in SESSION's
    transaction at once: a plain INSERT, no ORM object, no autoflush (as db.record_event);
    a letter on a case is added to its chain."""
    raw: bytes = row["raw"]
    row = row | {"sha256": hashlib.sha256(raw).hexdigest()}
    letter_id = session.connection().execute(_QUEUE, row).scalar_one()
    if row["case_id"] is not None:
        content = chained.letter_content(row["sha256"], row["to_address"], row["subject"])
        at, kind = row["queued_at"], str(row["kind"])
        chain.link(session, row["case_id"], chained.LETTER, letter_id, at, kind, content)


def automated_replies_since(session: Session, address: str, since: datetime) -> int:
    """The capped automated letters to ADDRESS queued after SINCE and not held back; the ones
    queued earlier in SESSION's transaction count (queue_letter's INSERT)."""
    count: int = (
        session.connection()
        .execute(_CAPPED_COUNT, {"address": address, "since": since})
        .scalar_one()
    )
    return count


def bounce(session: Session, address: str) -> Suppression | None:
    """The standing suppression of ADDRESS (it bounced), None if there is none."""
    if address not in db.suppressed_addresses(session):
        return None
    return session.get(Suppression, address)


def lift_bounce(session: Session, suppressed: Suppression, at: datetime, by: str) -> None:
    """A person wrote to the address SUPPRESSED holds back: recorded, not deleted (R8)."""
    suppressed.lifted_at, suppressed.lifted_by = at, by
    session.add(suppressed)
    db.suppressed_addresses(session).discard(suppressed.address)


def alerted_since(session: Session, subject: str, since: datetime) -> bool:
    """Whether an admin alert with SUBJECT was queued after SINCE."""
    already = session.exec(
        select(Outbound.id).where(
            Outbound.kind == MessageKind.ADMIN_ALERT,
            Outbound.subject == subject,
            col(Outbound.queued_at) > since,
        )
    ).first()
    return already is not None


def refused_before(session: Session, refused: Sequence[int], before: datetime) -> list[Outbound]:
    """The letters among REFUSED still queued whose first refusal came before BEFORE."""
    stale: list[Outbound] = []
    for start in range(0, len(refused), GIVE_UP_PAGE):
        stale += session.exec(
            select(Outbound).where(
                col(Outbound.id).in_(refused[start : start + GIVE_UP_PAGE]),
                Outbound.status == OutboundStatus.QUEUED,
                col(Outbound.first_refused_at) < before,
            )
        ).all()
    return stale


def outbox_batch(engine: Engine, now: datetime, after: int = 0) -> Due:
    """The next batch of letters due at NOW, past row AFTER, in their own session."""
    with Session(engine) as session:
        return db.due_outbound(session, now, after)


def due_letters(engine: Engine, now: datetime, page: Due) -> Iterator[tuple[int, str | None]]:
    """The due rows from PAGE on, read a batch at a time (a drained backlog queues
    thousands); PAGE holds the one being sent."""
    while page:
        yield from page
        page[:] = outbox_batch(engine, now, page[-1][0])


def claim_letter(connection: Connection, row_id: int) -> ClaimedRow | None:
    """Row ROW_ID's letter, claimed on CONNECTION until its answer is committed there (on
    PostgreSQL a row lock, which another daemon's claim skips). None, nothing held, if
    another daemon has it or it is no longer queued."""
    found = connection.execute(_CLAIM, {"row_id": row_id}).first()
    if found is None:
        connection.rollback()
    return found  # a Row is a tuple


def mark_undelivered(session: Session, message_id: str, at: datetime, reason: str) -> Outbound:
    """Our letter MESSAGE_ID did not arrive (a bounce named it at AT, saying REASON)."""
    letter = session.exec(select(Outbound).where(Outbound.message_id == message_id)).one()
    letter.undelivered_at, letter.undelivered_reason = at, reason
    session.add(letter)
    return letter


def last_letters_to(
    session: Session, addresses: Collection[str], before: datetime
) -> list[Outbound]:
    """The last letter on a case sent to each of ADDRESSES before BEFORE: what a bounce that
    quotes none of our Message-IDs returns, by its recipient and its time."""
    found: list[Outbound] = []
    for address in sorted(addresses):
        query = (
            select(Outbound)
            .where(
                Outbound.to_address == address,
                col(Outbound.case_id).is_not(None),
                Outbound.status == OutboundStatus.SENT,
                col(Outbound.sent_at) <= before,
            )
            .order_by(col(Outbound.sent_at).desc(), col(Outbound.id).desc())
            .limit(1)
        )
        found += session.exec(query).all()
    return found


def release_claim(connection: Connection) -> None:
    """Let go of the claim held on CONNECTION, nothing recorded: the letter was not tried."""
    connection.rollback()


def record_answer(connection: Connection, row_id: int, change: dict[str, object]) -> None:
    """Set CHANGE's columns on row ROW_ID and commit on CONNECTION, which ends its claim."""
    connection.execute(_RECORD, {"row_id": row_id, **change})  # SET: CHANGE's columns
    connection.commit()
