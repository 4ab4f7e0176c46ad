"""The apply stage: a transition's effects written in the caller's transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from mailbot.correspondence import Correspondence
from mailbot.outbox import OutboxWriter
from mailbot.outcome import Outcome, attach
from mailbot.procedure import rules
from mailbot.procedure import transitions as t
from mailbot.procedure.details import Detail, missing_details
from mailbot.procedure.rules import Due
from mailbot.store import db
from mailbot.store.models import (
    Case,
    Event,
    Inbound,
    MessageKind,
    Outbound,
    OutboundStatus,
)

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What applying effects did: the letters queued (by kind), and the message's filing."""

    queued: list[str] = field(default_factory=list)
    outcome: Outcome | None = None  # set when the message in hand went on the case


class Casefile:
    """Reads a case's state for the procedure, and writes what the procedure decided."""

    def __init__(
        self,
        engine: Engine,
        policy: t.Policy,
        correspondence: Correspondence,
        outbox: OutboxWriter,
        clock: Callable[[], datetime],
        case_ref_format: str,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.correspondence = correspondence
        self.outbox = outbox
        self.clock = clock
        self.case_ref_format = case_ref_format

    # -- the case, read and locked -----------------------------------------------------

    def locked(self, session: Session, case: Case | None) -> Case | None:
        """CASE locked for this transaction (PostgreSQL), as the tick locks the cases it
        works: a staff refusal and the automatic deadlock letter never both act on one state.
        """
        if case is None or self.engine.dialect.name != "postgresql":
            return case  # SQLite: one writer at a time already
        return session.get(Case, case.id, with_for_update=True, populate_existing=True)

    def state(self, session: Session, case: Case) -> t.CaseState:
        """What the procedure knows of CASE, with what only the database can tell."""
        state = snapshot(case)
        chased = state.deadlock_pending and self._chased(session, case)
        held = self.outbox.automated_mail_held(session, case.customer_email)
        return replace(state, chased=chased, held=held)

    def _chased(self, session: Session, case: Case) -> bool:
        requested = case.deadlock_requested_at
        return (
            session.exec(
                select(Event.id).where(
                    Event.case_id == case.id,
                    Event.action == t.CHASED,
                    col(Event.at) >= requested,
                )
            ).first()
            is not None
        )

    def open_case(
        self,
        session: Session,
        email: str,
        name: str,
        subject: str,
        received: datetime,
        details: Iterable[Detail],
        reopened_from: str = "",
        other_addresses: Iterable[str] = (),
    ) -> Case:
        """A new case row, numbered: letters go to EMAIL; mail from it or from
        OTHER_ADDRESSES is the customer's."""
        calendar = self.policy.calendar
        local_year = received.astimezone(calendar.zone).year
        case = Case(
            ref=db.next_case_ref(session, self.case_ref_format, local_year),
            customer_email=email.lower(),
            customer_name=name,
            subject=subject,
            received_at=received,
            details_found=",".join(sorted(details)),
            first_response_due=calendar.first_response_due(received),
            adr_date=received + timedelta(weeks=self.policy.adr_wait_weeks),
            reopened_from=reopened_from,
        )
        for address in other_addresses:
            case.add_address(address.lower())
        session.add(case)
        session.flush()
        assert case.id is not None
        db.start_thread(session, case.id)
        return case

    def complaint(
        self,
        session: Session,
        inbound: Inbound,
        case: Case,
        actor: str,
        outline: str,
        found: frozenset[Detail],
        attachments: Sequence[str],
        deadlock_words: str | None,
    ) -> Outcome:
        """The complaint in INBOUND opened CASE, with the R1 details FOUND: acknowledged and
        the handlers told (R2); R6 if it asks for a deadlock letter."""
        inbound.kind = MessageKind.COMPLAINT
        effects = t.opened(
            self.state(session, case),
            actor,
            outline,
            missing_details(found),
            attachments,
            deadlock_words,
            case.reopened_from,
            self.clock(),
            self.policy,
        )
        outcome = self.file(session, inbound, case, effects)
        outcome.new_case = True
        return outcome

    # -- effects written ---------------------------------------------------------------

    def file(
        self, session: Session, inbound: Inbound, case: Case, effects: Sequence[t.Effect]
    ) -> Outcome:
        """Apply EFFECTS, which put INBOUND on CASE: what became of it, for the log line."""
        applied = self.apply(session, case, effects, inbound)
        assert applied.outcome is not None, "a message's effects put it on the case"
        applied.outcome.queued = applied.queued
        return applied.outcome

    def apply(
        self,
        session: Session,
        case: Case | None,
        effects: Sequence[t.Effect],
        inbound: Inbound | None = None,
    ) -> Applied:
        """Write EFFECTS on CASE (None: letters about no case), in order."""
        applied = Applied()
        now = self.clock()
        for effect in effects:
            if isinstance(effect, t.ToStaff):  # the one kind of letter that may name no case
                self.correspondence.to_staff(
                    session,
                    case,
                    effect.member,
                    effect.kind,
                    effect.template,
                    effect.title,
                    effect.in_reply_to,
                    **effect.context,
                )
                applied.queued.append(effect.kind)
                continue
            assert case is not None, effect
            if isinstance(effect, t.Change):
                write_fields(case, effect.fields)
            elif isinstance(effect, t.Record):
                record(session, case, effect.actor, effect.action, now, effect.detail)
            elif isinstance(effect, t.Attach):
                assert inbound is not None
                applied.outcome = attach(session, inbound, case, effect.actor, now, effect.why)
            elif isinstance(effect, t.Suppress):
                db.suppress(session, effect.address, effect.reason, now, case.id)
            else:
                self._letter(session, case, effect, applied)
        if case is not None:
            self.reschedule(case)
            session.add(case)
        return applied

    def _letter(self, session: Session, case: Case, effect: t.Effect, applied: Applied) -> None:
        out = self.correspondence
        if isinstance(effect, t.ToCustomer):
            row = out.to_customer(
                session, case, effect.kind, effect.signed_by, **dict(effect.context)
            )
            if row.status != OutboundStatus.HELD:
                applied.queued.append(effect.kind)
        elif isinstance(effect, t.Acknowledge):
            if out.acknowledgement(session, case, effect.missing):
                applied.queued.append(MessageKind.ACKNOWLEDGEMENT)
        elif isinstance(effect, t.Relay):
            row = out.staff_reply(session, case, effect.member, effect.text)
            if row.status != OutboundStatus.HELD:
                applied.queued.append(MessageKind.STAFF_REPLY)
        elif isinstance(effect, t.Notify):
            out.staff_notification(
                session, case, effect.headline, effect.text, effect.missing, effect.attachments
            )
            applied.queued.append(MessageKind.STAFF_NOTIFICATION)
        elif isinstance(effect, t.NotifyThirdParty):
            out.third_party_notification(
                session, case, effect.writer, effect.text, effect.deadlock_words, effect.attachments
            )
            applied.queued.append(MessageKind.STAFF_NOTIFICATION)
        elif isinstance(effect, t.ToRole):
            out.to_role(session, case, effect.role, effect.kind, **effect.context)
            applied.queued.append(effect.kind)
        elif isinstance(effect, t.LetterHeld):
            letter = t.HELD_LETTERS[effect.kind]
            out.letter_held(session, case, letter, case.customer_email, effect.reason)
            applied.queued.append(MessageKind.LETTER_HELD)
        else:  # pragma: no cover - every effect is handled above
            raise AssertionError(effect)

    def reschedule(self, case: Case) -> None:
        """Keep the case's next due time (the tick's index) true after any change.

        A case the tick set aside stays out of it, whatever else changes on it, until an
        admin puts it back (`mailbot tick --retry-set-aside`).
        """
        if case.set_aside_reason:
            case.next_due_at = None
            return
        case.next_due_at = t.next_due_at(snapshot(case), self.clock(), self.policy)

    def next_update_due(self, case: Case) -> datetime | None:
        """R3: the cut-off by which the customer must next hear from us (None: no updates)."""
        state = snapshot(case)
        if state.resolved:
            return None
        return rules.next_update_at(state.timers(), self.policy.calendar, self.policy.timers)

    # -- the rules' tick and the server's answers --------------------------------------

    def run_due(self, session: Session, case: Case) -> list[Due]:
        """Do whatever the rules say is due on CASE now; return what was done."""
        effects, done = t.run_due(self.state(session, case), self.clock(), self.policy)
        self.apply(session, case, effects)
        return done

    def held_in_sending(self, session: Session) -> int:
        """ADR notices and deadlock letters the mail server turned out unable to take (an
        address it cannot carry): the case no longer says sent, and the managers are told.

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
        # a case's latest letter of each kind is the one in hand
        latest = {(case.id, row.kind): (row, case) for row, case in session.exec(query).all()}
        for row, case in latest.values():
            sent = (
                "adr_notice_sent_at" if row.kind == MessageKind.ADR_NOTICE else "deadlock_sent_at"
            )
            unsent: list[t.Effect] = [t.Change({sent: None})]
            self.apply(session, case, unsent + t.letter_held(row.kind, row.last_error))
        return len(latest)


def snapshot(case: Case) -> t.CaseState:
    """CASE's own fields, as the procedure reads them."""
    return t.CaseState(
        ref=case.ref,
        subject=case.subject,
        customer_email=case.customer_email,
        received_at=case.received_at,
        first_response_due=case.first_response_due,
        adr_date=case.adr_date,
        addresses=frozenset(case.addresses()),
        status=case.status,
        level=case.level,
        flags=frozenset(case.flag_set()),
        update_interval_days=case.update_interval_days,
        update_interval_agreed_by=case.update_interval_agreed_by,
        resolved_at=case.resolved_at,
        resolution_summary=case.resolution_summary,
        escalated_at=case.escalated_at,
        first_staff_reply_at=case.first_staff_reply_at,
        last_customer_contact_at=case.last_customer_contact_at,
        first_response_overdue_sent_at=case.first_response_overdue_sent_at,
        adr_notice_decided_at=case.adr_notice_decided_at,
        adr_notice_sent_at=case.adr_notice_sent_at,
        adr_notice_decision=case.adr_notice_decision,
        deadlock_requested_at=case.deadlock_requested_at,
        deadlock_sent_at=case.deadlock_sent_at,
        deadlock_refused_at=case.deadlock_refused_at,
        deadlock_position=case.deadlock_position,
    )


def write_fields(case: Case, changes: Mapping[str, Any]) -> None:
    """Set CASE's fields from a Change (CaseState's names)."""
    for name, value in changes.items():
        assert name in t.CASE_FIELDS, name
        if name == "flags":
            case.flags = ",".join(sorted(value))
        elif name == "addresses":
            for address in value:
                case.add_address(address)
        else:
            setattr(case, name, value)


def record(
    session: Session, case: Case, actor: str, action: str, at: datetime, detail: str = ""
) -> None:
    assert case.id is not None
    db.record_event(session, case.id, at, actor, action, detail)
