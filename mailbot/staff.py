"""Staff replies: verified, trimmed, their commands applied, their words relayed to the customer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from mailbot.casework import Casework
from mailbot.config import Settings, StaffMember
from mailbot.correspondence import Correspondence
from mailbot.mail.authentication import verify_sender
from mailbot.mail.parse import ParsedMessage
from mailbot.mail.trim import trim_reply
from mailbot.outcome import Outcome, attach, set_aside
from mailbot.procedure.commands import Command, Role, StaffReply, known, read_commands
from mailbot.store.models import (
    Case,
    CaseStatus,
    Disposition,
    Event,
    Inbound,
    Level,
    MessageKind,
    OutboundStatus,
)

log = logging.getLogger(__name__)

OpenCase = Callable[..., Outcome]


class StaffDesk:
    """Handles a message from a listed staff address."""

    def __init__(
        self,
        settings: Settings,
        correspondence: Correspondence,
        casework: Casework,
        clock: Callable[[], datetime],
        open_case: OpenCase,
    ) -> None:
        self.settings = settings
        self.out = correspondence
        self.casework = casework
        self.clock = clock
        self.open_case = open_case

    def handle(
        self,
        session: Session,
        inbound: Inbound,
        parsed: ParsedMessage,
        case: Case | None,
        member: StaffMember,
    ) -> Outcome:
        auth = self.settings.staff_auth
        verdict = verify_sender(parsed, auth.trusted_authserv_ids, auth.require)
        if not verdict.verified:
            return self._unverified(session, inbound, parsed, case, member, verdict.reason)

        reply = read_commands(trim_reply(parsed.text), Role(member.role))
        errors = list(reply.errors) + self._state_errors(reply, case)
        names = {c.name for c in reply.commands}
        inbound.kind = MessageKind.STAFF_NOTE if "note" in names else MessageKind.STAFF_REPLY
        if errors:
            outcome = (
                attach(
                    session,
                    inbound,
                    case,
                    member.email,
                    self.clock(),
                    "refused: " + "; ".join(errors),
                )
                if case is not None
                else set_aside(
                    inbound, Disposition.IGNORED, "staff message refused: " + "; ".join(errors)
                )
            )
            self._error(session, case, member, parsed, errors)
            outcome.queued.append(MessageKind.STAFF_ERROR)
            return outcome

        if case is None:  # _state_errors made sure this message says #new
            [new] = reply.commands
            email, _, name = new.argument.partition(" ")
            inbound.kind = MessageKind.COMPLAINT
            outcome = self.open_case(
                session,
                inbound,
                email.strip("<>"),
                name.strip(),
                parsed.subject,
                reply.text,
                actor=member.email,
            )
            created = session.get(Case, inbound.case_id)
            assert created is not None
            self._confirm(
                session,
                created,
                member,
                parsed,
                [f"opened case {created.ref} for {email.strip('<>')} and acknowledged it"],
                outcome.queued,
            )
            return outcome

        outcome = attach(session, inbound, case, member.email, self.clock())
        done = [self.apply(session, case, command, member) for command in reply.commands]
        if "note" not in names and reply.text.strip():
            done.append(self._relay(session, case, member, parsed, reply.text, outcome.queued))
        if not done:
            done.append("recorded your message on the case (no text for the customer)")
        self._confirm(session, case, member, parsed, done, outcome.queued)
        return outcome

    def apply(self, session: Session, case: Case, command: Command, member: StaffMember) -> str:
        """Change CASE as COMMAND says, record who did it, and say what was done."""
        now = self.clock()
        assert case.id is not None
        name, argument = command.name, command.argument
        actor, work = member.email, self.casework
        if name == "note":
            done = "kept your message as an internal note; it went to nobody"
        elif name == "resolve":
            work.resolve(session, case, actor, argument)
            done = f"resolved the case and sent the customer the resolution: {argument}"
        elif name == "reopen":
            work.reopen(session, case, actor, argument)
            done = f"reopened the case: {argument}"
        elif name == "escalate":
            work.escalate(session, case, actor, argument)
            done = f"escalated the case to Manager level and told the customer: {argument}"
        elif name == "updates":
            days = command.update_interval
            case.update_interval_days = days
            case.update_interval_agreed_by = member.email
            done = (
                "stopped routine updates, as agreed with the customer"
                if days == 0
                else f"set updates to every {days} working day{'s' if days > 1 else ''}"
            )
        elif name in ("vexatious", "out-of-scope"):
            case.add_flag(name.replace("-", "_"))
            done = f"marked the complaint {name.replace('-', ' ')}: {argument}"
            if work.deadlock_pending(case):
                work.refuse_deadlock(session, case, actor, argument)
                done += "; told the customer why no deadlock letter will be sent"
        elif name == "deadlock":
            refusal = command.refusal
            if refusal is not None:
                work.refuse_deadlock(session, case, actor, refusal)
                done = f"refused the deadlock letter and told the customer why: {refusal}"
            else:
                copy = case.deadlock_sent_at is not None
                work.deadlock_letter(session, case, actor, "issued by staff", position=argument)
                done = (
                    "sent a copy of the deadlock letter (one per case)"
                    if copy
                    else ("sent the deadlock letter")
                )
        elif name == "customer-address":
            case.add_address(command.address)
            done = (
                f"accepted {command.address} as the customer's address: mail from it now "
                f"counts as theirs (letters still go to {case.customer_email})"
            )
        else:  # pragma: no cover - read_commands admits only known commands
            raise AssertionError(name)
        session.add(case)
        session.add(
            Event(case_id=case.id, at=now, actor=member.email, action=f"#{name}", detail=argument)
        )
        return done

    def _state_errors(self, reply: StaffReply, case: Case | None) -> list[str]:
        names = [c.name for c in reply.commands]
        if case is None:
            if names != ["new"]:
                return [
                    "this message names no case: reply to a case's mail (keep the [reference] "
                    "in the subject), or open one for a postal or phone complaint with "
                    '"#new customer@example.com Name"'
                ]
            return [] if reply.text.strip() else ["#new needs the complaint's outline below it"]
        errors = []
        if "new" in names:
            errors.append(f"#new is for a message with no case; this one is on {case.ref}")
        if "resolve" in names and case.status == CaseStatus.RESOLVED:
            errors.append(f"{case.ref} is already resolved")
        if "reopen" in names and case.status != CaseStatus.RESOLVED:
            errors.append(f"{case.ref} is open, there is nothing to reopen")
        if "escalate" in names and case.level == Level.MANAGER:
            errors.append(f"{case.ref} is already at Manager level")
        for accepted in (c.address for c in reply.commands if c.name == "customer-address"):
            if self.settings.staff_member(accepted) is not None:
                errors.append(f"{accepted} is a staff address; staff mail is never the customer's")
            elif accepted in case.addresses():
                errors.append(f"{accepted} is already the customer's address on {case.ref}")
        refusing = any(c.name == "deadlock" and c.refusal is not None for c in reply.commands)
        if refusing and not self.casework.deadlock_pending(case):
            errors.append(f"{case.ref} has no deadlock letter request waiting for a decision")
        return errors

    def _relay(
        self,
        session: Session,
        case: Case,
        member: StaffMember,
        parsed: ParsedMessage,
        text: str,
        queued: list[str],
    ) -> str:
        now = self.clock()
        if case.first_staff_reply_at is None:
            case.first_staff_reply_at = now
        recipients = {a.email.lower() for a in (*parsed.to, *parsed.cc)}
        if recipients & case.addresses():
            # reply-all already reached the customer: record it, do not send it twice
            assert case.id is not None
            case.last_customer_contact_at = now
            session.add(
                Event(
                    case_id=case.id,
                    at=now,
                    actor=member.email,
                    action="wrote to the customer directly",
                )
            )
            return f"noted that you wrote to {case.customer_email} directly (not sent again)"
        row = self.out.staff_reply(session, case, member, text)
        if row.status == OutboundStatus.HELD:
            return (
                f"could not send your reply to {case.customer_email}: {row.last_error}; it is "
                "kept on the case, please reach the customer another way"
            )
        queued.append(MessageKind.STAFF_REPLY)
        return f"sent your reply to {case.customer_email}"

    def _confirm(
        self,
        session: Session,
        case: Case,
        member: StaffMember,
        parsed: ParsedMessage,
        done: list[str],
        queued: list[str],
    ) -> None:
        if not self.settings.notifications.confirm_staff_commands:
            return
        self.out.to_staff(
            session,
            case,
            member,
            MessageKind.STAFF_CONFIRMATION,
            "staff_confirmation",
            f"[{case.ref}] Done: {parsed.subject or case.subject}",
            parsed.message_id,
            done=done,
        )
        queued.append(MessageKind.STAFF_CONFIRMATION)

    def _error(
        self,
        session: Session,
        case: Case | None,
        member: StaffMember,
        parsed: ParsedMessage,
        errors: list[str],
    ) -> None:
        prefix = f"[{case.ref}] " if case else ""
        self.out.to_staff(
            session,
            case,
            member,
            MessageKind.STAFF_ERROR,
            "staff_error",
            f"{prefix}Not done: {parsed.subject or '(no subject)'}",
            parsed.message_id,
            errors=errors,
            subject=parsed.subject,
            known=known(),
        )

    def _unverified(
        self,
        session: Session,
        inbound: Inbound,
        parsed: ParsedMessage,
        case: Case | None,
        member: StaffMember,
        reason: str,
    ) -> Outcome:
        inbound.kind = MessageKind.STAFF_UNVERIFIED
        why = f"claims staff address {member.email} but is not authenticated: {reason}"
        outcome = (
            attach(session, inbound, case, "mailbot", self.clock(), why)
            if case is not None
            else set_aside(inbound, Disposition.QUARANTINED, why)
        )
        for manager in self.settings.staff_with_role("manager"):
            self.out.to_staff(
                session,
                case,
                manager,
                MessageKind.SECURITY_ALERT,
                "security_alert",
                f"Unverified message from {member.email}: {parsed.subject or '(no subject)'}",
                None,
                claimed=member.email,
                subject=parsed.subject,
                message_id=parsed.message_id,
                reason=reason,
            )
            outcome.queued.append(MessageKind.SECURITY_ALERT)
        return outcome
