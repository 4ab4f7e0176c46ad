"""A case's life (open, escalated, resolved, reopened): each act changes, writes, records."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, col, select

from mailbot.config import Settings
from mailbot.correspondence import Correspondence
from mailbot.procedure import rules
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.rules import Due, Policy, Timers
from mailbot.store.models import Case, CaseStatus, Event, Inbound, Level, MessageKind, Outbound

log = logging.getLogger(__name__)

RULE = "mailbot"  # the actor of what the rules do by themselves
GENERIC_POSITION = (
    "We have investigated your complaint and we have not been able to resolve it to your "
    "satisfaction. We believe we have done everything we reasonably can."
)


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
        if queued is None:
            # held back (the address bounced, say; the case records why): the day counts as
            # done, or every tick would try again until someone finds another way through
            case.last_customer_contact_at = self.clock()
            return
        self.record(session, case, RULE, "update sent", f"interval {interval} working day(s)")

    def adr_notice(self, session: Session, case: Case) -> None:
        now = self.clock()
        case.adr_notice_decided_at = case.adr_notice_sent_at = now
        weeks = self.settings.procedure.adr_wait_weeks
        case.adr_notice_decision = f"sent: unresolved {weeks} weeks after receipt"
        self.out.to_customer(
            session,
            case,
            MessageKind.ADR_NOTICE,
            f"Your right to refer your complaint to {self.settings.adr_scheme.name}",
            weeks=weeks,
        )
        self.record(session, case, RULE, "adr notice sent", case.adr_notice_decision)

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

    def deadlock_requested(self, session: Session, case: Case, words: str, text: str) -> None:
        """R6: record the customer's request and tell the handlers at once."""
        if case.deadlock_sent_at is not None:  # one letter per case: a copy, not a new decision
            self.record(session, case, "customer", "deadlock letter requested again", words)
            self.deadlock_letter(session, case, RULE, "a copy, as requested again")
            return
        case.deadlock_requested_at = self.clock()
        due = rules.deadlock_decision_due(case.deadlock_requested_at, self.calendar, self.policy)
        self.record(session, case, "customer", "deadlock letter requested", words)
        self.out.staff_notification(
            session,
            case,
            "Customer asks for a deadlock letter",
            f'The customer asked for a deadlock letter ("{words}"). It goes automatically '
            f"{self.out.letters.when(due)} unless you reply with #deadlock refuse REASON, "
            f"#vexatious REASON or #out-of-scope REASON. #deadlock sends it now.\n\n{text}",
        )

    def deadlock_letter(
        self, session: Session, case: Case, actor: str, why: str, position: str = ""
    ) -> None:
        """R6: the letter, or a copy of the one already sent."""
        copy = case.deadlock_sent_at is not None
        if not copy:
            case.deadlock_sent_at = self.clock()
            case.deadlock_position = position or case.resolution_summary or GENERIC_POSITION
        self.out.to_customer(
            session,
            case,
            MessageKind.DEADLOCK_LETTER,
            f"Deadlock letter: {case.subject}",
            position=case.deadlock_position,
            copy=copy,
            sent_day=self.out.letters.day(case.deadlock_sent_at or self.clock()),
        )
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
        requested, refused = case.deadlock_requested_at, case.deadlock_refused_at
        return (
            requested is not None
            and case.deadlock_sent_at is None
            and (refused is None or refused < requested)
        )

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
            .where(Outbound.case_id == case.id, Outbound.to_address == case.customer_email)
            .order_by(col(Outbound.id))
        ).all()
        for letter in outbound:
            if letter.kind in names:
                lines.append((letter.queued_at, f"{day(letter.queued_at)}: {names[letter.kind]}"))
        return [text for _, text in sorted(lines)][-8:]
