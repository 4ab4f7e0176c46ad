"""Cases: the one shape the procedure decides on, made from the row, and the queries about them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import CompoundSelect, and_, bindparam, literal, or_, union_all
from sqlalchemy import select as sql_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from mailbot.procedure.case import CASE_FIELDS, CaseState
from mailbot.procedure.needs import Need
from mailbot.procedure.vocabulary import MessageKind
from mailbot.store import chain, db
from mailbot.store.models import Case, Event, Inbound, Outbound, OutboundStatus

# the row's columns of the same name as the state's fields; the two sets are read apart
_COLUMNS = tuple(sorted(CASE_FIELDS - {"addresses", "flags", "needs"}))


def state_of(case: Case, chased: bool = False, held: str = "") -> CaseState:
    """CASE as the procedure reads it: a new CaseState field is a column of the same name."""
    return CaseState(
        **{name: getattr(case, name) for name in _COLUMNS},
        addresses=frozenset(case.addresses()),
        flags=frozenset(case.flag_set()),
        needs=needs_of(case),
        chased=chased,
        held=held,
    )


def needs_of(case: Case) -> tuple[Need, ...]:
    """The support needs recorded on CASE, oldest first (its `needs` column, JSON)."""
    if not case.needs:
        return ()
    return tuple(
        Need(n["need"], n["note"], n["recorded_by"], datetime.fromisoformat(n["recorded_at"]))
        for n in json.loads(case.needs)
    )


def needs_column(needs: Iterable[Need]) -> str:
    """NEEDS as the `needs` column keeps them ("" for none)."""
    listed = [
        {
            "need": n.need,
            "note": n.note,
            "recorded_by": n.recorded_by,
            "recorded_at": n.recorded_at.isoformat(),
        }
        for n in needs
    ]
    return json.dumps(listed) if listed else ""


def open_case(
    session: Session, state: CaseState, details: Iterable[str], ref_format: str, year: int
) -> Case:
    """A row for the case STATE opens, numbered in YEAR's series; its thread starts empty."""
    case = Case(
        ref=db.next_case_ref(session, ref_format, year),
        customer_email=state.customer_email,
        customer_name=state.customer_name,
        subject=state.subject,
        received_at=state.received_at,
        details_found=",".join(sorted(details)),
        first_response_due=state.first_response_due,
        adr_date=state.adr_date,
        reopened_from=state.reopened_from,
    )
    for address in sorted(state.addresses):
        case.add_address(address)
    session.add(case)
    session.flush()
    assert case.id is not None
    db.start_thread(session, case.id)
    chain.begin(session, case.id)
    return case


_OPENED_FOR = (
    select(Case.id)
    .where(
        col(Case.customer_email).in_(bindparam("addresses", expanding=True)),
        col(Case.received_at) >= bindparam("start"),
        col(Case.received_at) < bindparam("end"),
    )
    .order_by(col(Case.received_at).desc(), col(Case.id).desc())
)


def opened_for(
    session: Session, addresses: Iterable[str], start: datetime, end: datetime
) -> list[int]:
    """The ids of the cases opened for ADDRESSES (a new complaint's From and Reply-To: where
    its letters would go), received from START up to END: the latest first. By the indexed
    address, prebuilt: one index probe a new complaint, however many cases (bench/backlog)."""
    params = {"addresses": sorted({a.lower() for a in addresses}), "start": start, "end": end}
    with session.no_autoflush:  # the batch's pending rows hold no case opened before
        return [i for i in session.exec(_OPENED_FOR, params=params) if i is not None]


def lock_case(session: Session, case: Case | None) -> Case | None:
    """CASE locked for this transaction (PostgreSQL), as the timers lock the cases they work:
    a staff refusal and the automatic deadlock letter never both act on one state."""
    if case is None or session.get_bind().dialect.name != "postgresql":
        return case  # SQLite: one writer at a time already
    return session.get(Case, case.id, with_for_update=True, populate_existing=True)


def case_of_thread(
    session: Session, refs: Iterable[str], message_ids: Sequence[str]
) -> Case | None:
    """The case a message threads onto: the first of REFS (from a subject's [REF]) that is a
    case, else the case of the latest of MESSAGE_IDS (In-Reply-To, References) we know."""
    with session.no_autoflush:  # only the message's parsed fields wait: no case in them
        found = None
        for ref in refs:
            found = db.case_by_ref(session, ref)
            if found is not None:
                break
        return carried_on(session, found or db.case_by_message_ids(session, message_ids))


def carried_on(session: Session, case: Case | None) -> Case | None:
    """The case that carries CASE on: CASE itself, or (merged) the case it was merged into."""
    seen = set()
    while case is not None and case.merged_into and case.ref not in seen:
        seen.add(case.ref)
        case = db.case_by_ref(session, case.merged_into) or case
    return case


def cases_by_ref(session: Session, refs: Iterable[str]) -> list[Case]:
    """The cases of REFS that exist (the cases a staff member's commands name)."""
    return [case for case in (db.case_by_ref(session, ref) for ref in refs) if case is not None]


def case_of_letters(session: Session, letters: Sequence[Outbound]) -> Case | None:
    """The case of the first of our LETTERS that is on one."""
    return next(
        (session.get(Case, letter.case_id) for letter in letters if letter.case_id is not None),
        None,
    )


_EVENT_SINCE = (
    select(Event.id)
    .where(
        Event.case_id == bindparam("case_id"),
        Event.action == bindparam("action"),
        col(Event.at) >= bindparam("since"),
    )
    .limit(1)
)


def event_since(session: Session, case_id: int | None, action: str, since: datetime) -> bool:
    """Whether CASE_ID has an event ACTION at or after SINCE."""
    params = {"case_id": case_id, "action": action, "since": since}
    return session.exec(_EVENT_SINCE, params=params).first() is not None


def latest_event(session: Session, case_id: int | None, actions: Sequence[str]) -> Event | None:
    """The latest of CASE_ID's events that is one of ACTIONS."""
    return session.exec(
        select(Event)
        .where(Event.case_id == case_id, col(Event.action).in_(actions))
        .order_by(col(Event.id).desc())
        .limit(1)
    ).first()


def complaint_text(session: Session, case_id: int | None) -> str:
    """The text of the complaint that opened CASE_ID ("" if erased or none)."""
    text = session.exec(
        select(Inbound.text)
        .where(Inbound.case_id == case_id, Inbound.kind == MessageKind.COMPLAINT)
        .order_by(col(Inbound.id))
        .limit(1)
    ).first()
    return text or ""


# the customer's thread: their messages and ours to them (prebuilt: asked of every case
# a transaction writes to, ordered by time and then ours after theirs)
_THREAD: CompoundSelect[str, datetime, int, int] = union_all(
    sql_select(
        col(Inbound.message_id),
        col(Inbound.received_at).label("at"),
        literal(0).label("ours"),
        col(Inbound.id).label("n"),
    ).where(
        col(Inbound.case_id) == bindparam("case_id"),
        col(Inbound.kind).in_([MessageKind.COMPLAINT, MessageKind.CUSTOMER_REPLY]),
    ),
    sql_select(
        col(Outbound.message_id),
        col(Outbound.queued_at).label("at"),
        literal(1).label("ours"),
        col(Outbound.id).label("n"),
    ).where(
        col(Outbound.case_id) == bindparam("case_id"),
        col(Outbound.to_address) == bindparam("address"),
        col(Outbound.status) != OutboundStatus.HELD,  # never sent: nothing to thread on
    ),
).order_by("at", "ours", "n")


def customer_thread(session: Session, case: Case) -> list[tuple[datetime, bool, str]]:
    """CASE's thread with its customer, (when, ours, Message-ID) in time order; read once a
    transaction, then kept up to date by what the transaction adds (db.note_in_thread)."""
    threads = db.transaction_cache(session, db.THREADS)
    if case.id not in threads:
        rows = session.execute(_THREAD, {"case_id": case.id, "address": case.customer_email})
        threads[case.id] = [(at, bool(mine), message_id) for message_id, at, mine, _ in rows]
    thread: list[tuple[datetime, bool, str]] = threads[case.id]
    return thread


def letters_held_in_sending(session: Session) -> list[tuple[Outbound, Case]]:
    """ADR notices and deadlock letters the mail server turned out unable to take, on cases
    that still say they went: each case's latest such letter of each kind.

    Found by the case's own state (sent, but every such letter on it held), so each is
    settled once, whoever sent it and whenever.
    """
    other = aliased(Outbound)
    went = (
        select(other.id)
        .where(
            other.case_id == Outbound.case_id,
            other.kind == Outbound.kind,
            col(other.status).in_([OutboundStatus.QUEUED, OutboundStatus.SENT]),
        )
        .exists()
    )
    query = (
        select(Outbound, Case)
        .join(Case, col(Outbound.case_id) == col(Case.id))
        .where(
            Outbound.status == OutboundStatus.HELD,
            or_(
                and_(
                    col(Outbound.kind) == MessageKind.ADR_NOTICE,
                    col(Case.adr_notice_sent_at).is_not(None),
                ),
                and_(
                    col(Outbound.kind) == MessageKind.DEADLOCK_LETTER,
                    col(Case.deadlock_sent_at).is_not(None),
                ),
            ),
            ~went,
        )
        .order_by(col(Outbound.id))
        .with_for_update(of=Case, skip_locked=True)  # db.CLAIM: another daemon's
    )
    latest = {(case.id, row.kind): (row, case) for row, case in session.exec(query).all()}
    return list(latest.values())
