"""The apply stage: every effect the procedure decides, written in the caller's transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mailbot.correspondence import Correspondence
from mailbot.outbox import OutboxWriter
from mailbot.outcome import Outcome
from mailbot.procedure import rules
from mailbot.procedure import transitions as t
from mailbot.procedure.case import CASE_FIELDS, CaseState
from mailbot.procedure.effects import (
    Acknowledge,
    Attach,
    Change,
    Effect,
    Hold,
    Ignore,
    LetterHeld,
    Notify,
    NotifyThirdParty,
    OnCase,
    Open,
    Quarantine,
    Record,
    Relay,
    Release,
    Suppress,
    ToCustomer,
    TooLarge,
    ToPrint,
    ToRole,
    ToStaff,
    Undelivered,
)
from mailbot.procedure.policy import Policy
from mailbot.procedure.rules import Due
from mailbot.procedure.vocabulary import Disposition, MessageKind
from mailbot.store import cases, chain, db, held
from mailbot.store.db import Session
from mailbot.store.models import Case, Inbound, OutboundStatus
from mailbot.store.outbox import mark_undelivered

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What applying effects did: the letters queued (by kind), and the message's filing."""

    queued: list[str] = field(default_factory=list)
    outcome: Outcome | None = None  # set when the message in hand was filed
    new_case: bool = False
    released: list[int] = field(default_factory=list)  # held messages released, to process


class Casefile:
    """Reads a case's state for the procedure, and writes what the procedure decided: the one
    place that writes a case."""

    def __init__(
        self,
        policy: Policy,
        correspondence: Correspondence,
        outbox: OutboxWriter,
        clock: Callable[[], datetime],
        case_ref_format: str,
    ) -> None:
        self.policy = policy
        self.correspondence = correspondence
        self.outbox = outbox
        self.clock = clock
        self.case_ref_format = case_ref_format

    def state(self, session: Session, case: Case) -> CaseState:
        """What the procedure knows of CASE, with what only the database can tell."""
        held = self.outbox.automated_mail_held(session, case.customer_email)
        state = cases.state_of(case, held=held)
        requested = state.deadlock_requested_at
        if state.deadlock_pending and requested is not None:
            return replace(state, chased=cases.event_since(session, case.id, t.CHASED, requested))
        return state

    # -- effects written ---------------------------------------------------------------

    def apply_message(
        self, session: Session, inbound: Inbound, case: Case | None, effects: Sequence[Effect]
    ) -> Outcome:
        """Write EFFECTS, the route's for the message INBOUND (on CASE, or on the case an Open
        among them makes): what became of it, for the log line."""
        applied = self.apply(session, case, effects, inbound)
        outcome = applied.outcome
        assert outcome is not None, "the route files every message"
        outcome.queued, outcome.new_case = applied.queued, applied.new_case
        outcome.released = applied.released
        return outcome

    def apply(
        self,
        session: Session,
        case: Case | None,
        effects: Sequence[Effect],
        inbound: Inbound | None = None,
    ) -> Applied:
        """Write EFFECTS on CASE (None: letters about no case), in order."""
        applied = Applied()
        now = self.clock()
        for effect in effects:
            if isinstance(effect, Open):
                case = self._open(session, effect)
                applied.new_case = True
            elif isinstance(effect, Attach | Ignore | Quarantine | Hold):
                assert inbound is not None, effect
                applied.outcome = self._file(session, inbound, case, effect, now)
            elif isinstance(effect, ToStaff):  # the one kind of letter that may name no case
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
            elif isinstance(effect, OnCase):  # the load stage read (and locked) it
                other = db.case_by_ref(session, effect.ref)
                assert other is not None, effect.ref
                applied.queued += self.apply(session, other, effect.effects).queued
            elif isinstance(effect, Release):
                if held.release(session, effect.inbound_id, effect.by) is not None:
                    applied.released.append(effect.inbound_id)
            elif isinstance(effect, TooLarge):
                self.correspondence.too_large(
                    session,
                    effect.sender,
                    effect.subject,
                    effect.message_id,
                    effect.size,
                    effect.limit,
                )
                applied.queued.append(MessageKind.TOO_LARGE)
            else:
                assert case is not None, effect
                self._on_case(session, case, effect, now, applied)
        if case is not None:
            self.reschedule(case)
            session.add(case)
        return applied

    def _open(self, session: Session, effect: Open) -> Case:
        year = effect.state.received_at.astimezone(self.policy.calendar.zone).year
        return cases.open_case(session, effect.state, effect.details, self.case_ref_format, year)

    def _file(
        self,
        session: Session,
        inbound: Inbound,
        case: Case | None,
        effect: Attach | Ignore | Quarantine | Hold,
        now: datetime,
    ) -> Outcome:
        """Where the message in hand goes: on CASE with an event saying who sent what, or on
        no case (kept, held for staff, or in quarantine) with the reason."""
        if isinstance(effect, Hold):
            inbound.disposition, inbound.reason = Disposition.HELD, effect.reason
            return Outcome(inbound.message_id, Disposition.HELD, reason=effect.reason)
        inbound.kind = effect.kind
        if not isinstance(effect, Attach):
            disposition = (
                Disposition.IGNORED if isinstance(effect, Ignore) else Disposition.QUARANTINED
            )
            inbound.disposition, inbound.reason = disposition, effect.reason
            return Outcome(
                inbound.message_id, disposition, reason=effect.reason, kind=effect.kind or ""
            )
        assert case is not None and case.id is not None, effect
        if effect.reason:
            inbound.reason = effect.reason
        inbound.case_id, inbound.disposition = case.id, Disposition.CASE
        chain.link_received(session, inbound)
        if effect.kind in (MessageKind.COMPLAINT, MessageKind.CUSTOMER_REPLY):
            db.note_in_thread(session, case.id, inbound.message_id, inbound.received_at, False)
        db.record_event(session, case.id, now, effect.actor, effect.kind, effect.why)
        return Outcome(
            inbound.message_id,
            Disposition.CASE,
            case_ref=case.ref,
            kind=effect.kind,
            reason=effect.why,
        )

    def _on_case(
        self, session: Session, case: Case, effect: Effect, now: datetime, applied: Applied
    ) -> None:
        out = self.correspondence
        if isinstance(effect, Change):
            write_fields(case, effect.fields)
        elif isinstance(effect, Record):
            assert case.id is not None
            db.record_event(session, case.id, now, effect.actor, effect.action, effect.detail)
        elif isinstance(effect, Suppress):
            db.suppress(session, effect.address, effect.reason, now, case.id)
        elif isinstance(effect, ToCustomer):
            row = out.to_customer(
                session, case, effect.kind, effect.signed_by, **dict(effect.context)
            )
            if row.status != OutboundStatus.HELD:
                applied.queued.append(effect.kind)
        elif isinstance(effect, Acknowledge):
            if out.acknowledgement(session, case, effect.missing):
                applied.queued.append(MessageKind.ACKNOWLEDGEMENT)
        elif isinstance(effect, Relay):
            row = out.staff_reply(session, case, effect.member, effect.text)
            if row.status != OutboundStatus.HELD:
                applied.queued.append(MessageKind.STAFF_REPLY)
        elif isinstance(effect, Notify):
            out.staff_notification(
                session,
                case,
                effect.headline,
                effect.text,
                effect.missing,
                effect.attachments,
                effect.support,
            )
            applied.queued.append(MessageKind.STAFF_NOTIFICATION)
        elif isinstance(effect, NotifyThirdParty):
            out.third_party_notification(
                session, case, effect.writer, effect.text, effect.deadlock_words, effect.attachments
            )
            applied.queued.append(MessageKind.STAFF_NOTIFICATION)
        elif isinstance(effect, ToRole):
            out.to_role(
                session, case, effect.role, effect.kind, effect.also_handlers, **effect.context
            )
            applied.queued.append(effect.kind)
        elif isinstance(effect, Undelivered):
            mark_undelivered(session, effect.message_id, now, effect.reason)
        elif isinstance(effect, ToPrint):
            out.to_print(session, case, effect.message_id, effect.kind, effect.reason)
            applied.queued.append(MessageKind.BY_POST)
        elif isinstance(effect, LetterHeld):
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
        case.next_due_at = t.next_due_at(cases.state_of(case), self.clock(), self.policy)

    def next_update_due(self, case: Case) -> datetime | None:
        """R3: the cut-off by which the customer must next hear from us (None: no updates)."""
        state = cases.state_of(case)
        if not state.open:
            return None
        return rules.next_update_at(state, self.policy.calendar, self.policy.limits)

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
        latest = cases.letters_held_in_sending(session)
        for row, case in latest:
            self.apply(session, case, t.not_taken(cases.state_of(case), row.kind, row.last_error))
        return len(latest)


def write_fields(case: Case, changes: Mapping[str, Any]) -> None:
    """Set CASE's fields from a Change (CaseState's names)."""
    for name, value in changes.items():
        assert name in CASE_FIELDS, name
        if name == "flags":
            case.flags = ",".join(sorted(value))
        elif name == "addresses":
            for address in value:
                case.add_address(address)
        elif name == "needs":
            case.needs = cases.needs_column(value)
        else:
            setattr(case, name, value)
