"""A case's life (open, escalated, resolved, reopened): each act changes, writes, records."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import and_, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from mailbot.config import Settings
from mailbot.correspondence import Correspondence
from mailbot.procedure import rules
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.rules import Due, Policy, Timers
from mailbot.store.models import (
    Case,
    CaseStatus,
    Event,
    Inbound,
    Level,
    MessageKind,
    Outbound,
    OutboundStatus,
)

log = logging.getLogger(__name__)

RULE = "mailbot"  # the actor of what the rules do by themselves
GENERIC_POSITION = (
    "We have investigated your complaint and we have not been able to resolve it to your "
    "satisfaction. We believe we have done everything we reasonably can."
)
CHASED = "deadlock letter chased"  # a request again while the first waits for its decision
# the letters whose holding back the managers hear of at once: they must go another way
HELD_LETTERS = {
    MessageKind.ADR_NOTICE: "the ADR notice",
    MessageKind.DEADLOCK_LETTER: "the deadlock letter",
}


class Casework:
    """The procedure's acts on a case, shared by staff commands and the rules' tick."""

    def __init__(
        self,
        settings: Settings,
        calendar: BusinessCalendar,
        letters: Correspondence,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.out = letters
        self.clock = clock
        p = settings.procedure
        self.policy = Policy(
            p.cutoff, p.auto_escalate_working_days, p.deadlock_decision_working_days
        )

    def record(
        self, session: Session, case: Case, actor: str, action: str, detail: str = ""
    ) -> None:
        assert case.id is not None
        session.add(
            Event(case_id=case.id, at=self.clock(), actor=actor, action=action, detail=detail)
        )

    # -- the rules' tick ---------------------------------------------------------------------

    def timers(self, case: Case) -> Timers:
        return Timers(
            received_at=case.received_at,
            resolved=case.status == CaseStatus.RESOLVED,
            manager_level=case.level == Level.MANAGER,
            flags=frozenset(case.flag_set()),
            update_interval_days=case.update_interval_days,
            last_customer_contact_at=case.last_customer_contact_at,
            first_response_due=case.first_response_due,
            first_staff_reply_at=case.first_staff_reply_at,
            first_response_overdue_sent_at=case.first_response_overdue_sent_at,
            adr_date=case.adr_date,
            adr_notice_decided_at=case.adr_notice_decided_at,
            deadlock_requested_at=case.deadlock_requested_at,
            deadlock_sent_at=case.deadlock_sent_at,
            deadlock_refused_at=case.deadlock_refused_at,
            deadlock_held_back=self.deadlock_held_back(case),
        )

    def reschedule(self, case: Case) -> None:
        """Keep the case's next due time (the tick's index) true after any change.

        A case the tick set aside stays out of it, whatever else changes on it, until an
        admin puts it back (`mailbot tick --retry-set-aside`).
        """
        if case.set_aside_reason:
            case.next_due_at = None
            return
        case.next_due_at = rules.plan(
            self.timers(case), self.clock(), self.calendar, self.policy
        ).next_due_at

    def next_update_due(self, case: Case) -> datetime | None:
        """R3: the cut-off by which the customer must next hear from us (None: no updates)."""
        if case.status == CaseStatus.RESOLVED:
            return None
        return rules.next_update_at(self.timers(case), self.calendar, self.policy)

    def _plan(self, case: Case) -> rules.Plan:
        return rules.plan(self.timers(case), self.clock(), self.calendar, self.policy)

    def run_due(self, session: Session, case: Case) -> list[Due]:
        """Do whatever the rules say is due on CASE now; return what was done."""
        due = self._plan(case).due
        done: list[Due] = []
        for what in due:
            if what is Due.FIRST_RESPONSE_OVERDUE:
                case.first_response_overdue_sent_at = self.clock()
                self.out.to_role(
                    session,
                    case,
                    "team_leader",
                    MessageKind.FIRST_RESPONSE_OVERDUE,
                    "First response overdue",
                )
                self.record(
                    session,
                    case,
                    RULE,
                    "first response overdue",
                    f"due {case.first_response_due.isoformat()}, no staff reply",
                )
            elif what is Due.ESCALATION:
                days = self.settings.procedure.auto_escalate_working_days
                self.escalate(session, case, RULE, f"unresolved after {days} working days (R4)")
            elif what is Due.ADR_NOTICE:
                self.adr_notice(session, case)
            elif what is Due.ADR_NOTICE_WITHHELD:
                reason = rules.adr_exception(self.timers(case)) or "?"
                case.adr_notice_decided_at = self.clock()
                case.adr_notice_decision = f"not sent: the case is {reason.replace('_', ' ')}"
                self.record(session, case, RULE, "adr notice withheld", case.adr_notice_decision)
            elif what is Due.DEADLOCK_LETTER:
                window = self.settings.procedure.deadlock_decision_working_days
                self.deadlock_letter(
                    session,
                    case,
                    RULE,
                    f"requested, no exception recorded within {window} working day(s)",
                )
            elif what is Due.UPDATE:
                if Due.UPDATE not in self._plan(case).due:
                    continue  # another letter of this run already told the customer
                self.update(session, case)
            done.append(what)
        self.reschedule(case)
        session.add(case)
        return done

    # -- acts ----------------------------------------------------------------------------------

    def update(self, session: Session, case: Case) -> None:
        """R3: tell the customer where their complaint stands."""
        interval = case.update_interval_days
        next_words = (
            "on the next working day" if interval == 1 else (f"within {interval} working days")
        )
        queued = self.out.to_customer(
            session,
            case,
            MessageKind.UPDATE,
            f"Update on your complaint: {case.subject}",
            history=self.history(session, case),
            next_words=next_words,
        )
        if queued.status == OutboundStatus.HELD:
            # held back (the address bounced, say; the case records why): the day counts as
            # done, or every tick would try again until someone finds another way through
            case.last_customer_contact_at = self.clock()
            return
        self.record(session, case, RULE, "update sent", f"interval {interval} working day(s)")

    def adr_notice(self, session: Session, case: Case) -> None:
        """R5: the notice goes once; held back, it is decided all the same (never retried)."""
        now = self.clock()
        case.adr_notice_decided_at = now
        weeks = self.settings.procedure.adr_wait_weeks
        row = self.out.to_customer(
            session,
            case,
            MessageKind.ADR_NOTICE,
            f"Your right to refer your complaint to {self.settings.adr_scheme.name}",
            weeks=weeks,
        )
        if row.status == OutboundStatus.HELD:
            self.letter_held(session, case, row)
            return
        case.adr_notice_sent_at = now
        case.adr_notice_decision = f"sent: unresolved {weeks} weeks after receipt"
        self.record(session, case, RULE, "adr notice sent", case.adr_notice_decision)

    def letter_held(self, session: Session, case: Case, row: Outbound) -> None:
        """An ADR notice or a deadlock letter held back (ROW says why): the case records it,
        and the managers are told at once, as it must reach the customer another way."""
        letter = HELD_LETTERS[row.kind]
        detail = f"{row.last_error}; the managers were told to send it another way"
        if row.kind == MessageKind.ADR_NOTICE:
            case.adr_notice_decision = f"held back: {detail}"
        self.record(session, case, RULE, f"{letter} held back", detail)
        self.out.letter_held(session, case, row, letter)

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
            .with_for_update(of=Case, skip_locked=True)  # outbox.CLAIM: another daemon's
        )
        # a case's latest letter of each kind is the one in hand
        latest = {(case.id, row.kind): (row, case) for row, case in session.exec(query).all()}
        for row, case in latest.values():
            if row.kind == MessageKind.ADR_NOTICE:
                case.adr_notice_sent_at = None
            else:
                case.deadlock_sent_at = None
            self.letter_held(session, case, row)
            self.reschedule(case)
            session.add(case)
        return len(latest)

    def escalate(self, session: Session, case: Case, actor: str, reason: str) -> None:
        """R4: Manager level; the managers and the customer are told."""
        case.level, case.escalated_at = Level.MANAGER, self.clock()
        self.out.to_role(
            session,
            case,
            "manager",
            MessageKind.ESCALATION_NOTICE,
            "Escalated",
            actor=actor,
            reason=reason,
        )
        self.out.to_customer(
            session,
            case,
            MessageKind.ESCALATION_NOTICE,
            f"Your complaint is now with our managers: {case.subject}",
        )
        self.record(session, case, actor, "escalated", reason)

    def resolve(self, session: Session, case: Case, actor: str, summary: str) -> None:
        """R7: resolved; the customer gets the resolution; the timers stop."""
        case.status, case.resolved_at, case.resolution_summary = (
            CaseStatus.RESOLVED,
            self.clock(),
            summary,
        )
        self.out.to_customer(
            session,
            case,
            MessageKind.RESOLUTION,
            f"Your complaint is resolved: {case.subject}",
            reopen_days=self.settings.procedure.reopen_days,
        )
        self.record(session, case, actor, "resolved", summary)

    def reopen(self, session: Session, case: Case, actor: str, reason: str) -> None:
        case.status, case.resolved_at = CaseStatus.OPEN, None
        if case.adr_notice_sent_at is None:  # R5 applies again to an unresolved complaint
            case.adr_notice_decided_at, case.adr_notice_decision = None, ""
        self.record(session, case, actor, "reopened", reason)

    def deadlock_requested(
        self, session: Session, case: Case, actor: str, words: str, text: str
    ) -> None:
        """R6: record the request (ACTOR: the address that wrote) and tell the handlers at once."""
        if case.deadlock_sent_at is not None:  # one letter per case: a copy, not a new decision
            self.record(session, case, actor, "deadlock letter requested again", words)
            self.deadlock_letter(session, case, RULE, "a copy, as requested again")
            return
        if self.deadlock_held_back(case):  # decided, but it never went: try again, as asked
            self.record(session, case, actor, "deadlock letter requested again", words)
            self.deadlock_letter(session, case, RULE, "requested again after it was held back")
            return
        if self.deadlock_pending(case):
            self.deadlock_chased(session, case, actor, words, text)
            return
        case.deadlock_requested_at = self.clock()
        due = rules.deadlock_decision_due(case.deadlock_requested_at, self.calendar, self.policy)
        self.record(session, case, actor, "deadlock letter requested", words)
        self.out.staff_notification(
            session,
            case,
            "Customer asks for a deadlock letter",
            f'The customer asked for a deadlock letter ("{words}"). It goes automatically '
            f'{self.out.letters.when(due)} unless you reply with "#deadlock refuse REASON", '
            f'"#vexatious REASON" or "#out-of-scope REASON"; "#deadlock" sends it now.\n\n{text}',
        )

    def deadlock_chased(
        self, session: Session, case: Case, actor: str, words: str, text: str
    ) -> None:
        """R6: a request while one is pending keeps the first one's window; the handlers are
        told of the first chase only."""
        requested = case.deadlock_requested_at
        assert requested is not None and case.id is not None
        chased_before = session.exec(
            select(Event.id).where(
                Event.case_id == case.id,
                Event.action == CHASED,
                col(Event.at) >= requested,
            )
        ).first()
        when = self.out.letters.when
        self.record(session, case, actor, CHASED, f"{words}; requested {when(requested)}")
        if chased_before is not None:
            return
        due = rules.deadlock_decision_due(requested, self.calendar, self.policy)
        self.out.staff_notification(
            session,
            case,
            "Customer chased the deadlock letter",
            f'The customer asked again for the deadlock letter ("{words}"), first asked for '
            f"{when(requested)}. The decision is still due {when(due)}: the letter goes "
            'automatically then unless you reply with "#deadlock refuse REASON", '
            '"#vexatious REASON" or "#out-of-scope REASON"; "#deadlock" sends it now. '
            f"Further chases are recorded on the case without telling you again.\n\n{text}",
        )

    def deadlock_letter(
        self, session: Session, case: Case, actor: str, why: str, position: str = ""
    ) -> None:
        """R6: the letter, or a copy of the one already sent; held back, it is decided all
        the same (the rules do not retry it) and the managers are told."""
        now = self.clock()
        copy = case.deadlock_sent_at is not None
        if not copy:  # a letter held back before keeps its position unless staff give one
            case.deadlock_position = (
                position or case.deadlock_position or case.resolution_summary or GENERIC_POSITION
            )
        row = self.out.to_customer(
            session,
            case,
            MessageKind.DEADLOCK_LETTER,
            f"Deadlock letter: {case.subject}",
            position=case.deadlock_position,
            copy=copy,
            sent_day=self.out.letters.day(case.deadlock_sent_at or now),
        )
        if row.status == OutboundStatus.HELD:
            self.letter_held(session, case, row)
            return
        if not copy:
            case.deadlock_sent_at = now
        self.record(
            session,
            case,
            actor,
            "deadlock letter copy sent" if copy else "deadlock letter sent",
            why,
        )

    def refuse_deadlock(self, session: Session, case: Case, actor: str, reason: str) -> None:
        """R6: an exception recorded; the customer is told why, in writing."""
        case.deadlock_refused_at = self.clock()
        self.out.to_customer(
            session,
            case,
            MessageKind.DEADLOCK_REFUSAL,
            f"Your request for a deadlock letter: {case.subject}",
            reason=reason,
        )
        self.record(session, case, actor, "deadlock letter refused", reason)

    def deadlock_pending(self, case: Case) -> bool:
        """A customer's request waits for the staff's decision (or the window's end)."""
        requested, refused = case.deadlock_requested_at, case.deadlock_refused_at
        return (
            requested is not None
            and not case.deadlock_position  # no letter written yet, sent or held back
            and (refused is None or refused < requested)
        )

    def deadlock_held_back(self, case: Case) -> bool:
        """The deadlock letter was written but held back (the managers were told)."""
        return case.deadlock_sent_at is None and bool(case.deadlock_position)

    def history(self, session: Session, case: Case) -> list[str]:
        """The case so far, in the customer's words: what came in and what went out, by day."""
        day = self.out.letters.day
        lines = []
        inbound = session.exec(
            select(Inbound).where(Inbound.case_id == case.id).order_by(col(Inbound.id))
        ).all()
        for message in inbound:
            if message.kind in (MessageKind.COMPLAINT, MessageKind.CUSTOMER_REPLY):
                lines.append((message.received_at, f"{day(message.received_at)}: your message"))
        names = {
            MessageKind.ACKNOWLEDGEMENT: "our acknowledgement",
            MessageKind.STAFF_REPLY: "a reply from our team",
            MessageKind.ESCALATION_NOTICE: "your complaint passed to our managers",
            MessageKind.DEADLOCK_REFUSAL: "our answer to your request for a deadlock letter",
        }
        outbound = session.exec(
            select(Outbound)
            .where(
                Outbound.case_id == case.id,
                Outbound.to_address == case.customer_email,
                Outbound.status != OutboundStatus.HELD,  # never went: not in their history
            )
            .order_by(col(Outbound.id))
        ).all()
        for letter in outbound:
            if letter.kind in names:
                lines.append((letter.queued_at, f"{day(letter.queued_at)}: {names[letter.kind]}"))
        return [text for _, text in sorted(lines)][-8:]
