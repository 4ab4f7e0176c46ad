"""Staff replies: verified, trimmed, their commands applied, their words relayed to the customer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from mailbot.apply import Casefile
from mailbot.config import Settings
from mailbot.mail.authentication import verify_sender
from mailbot.mail.parse import ParsedMessage
from mailbot.mail.trim import trim_reply
from mailbot.outcome import Outcome, set_aside
from mailbot.procedure import transitions as t
from mailbot.procedure.commands import Role, known, read_commands
from mailbot.procedure.deadlock import deadlock_request
from mailbot.procedure.details import find_details
from mailbot.procedure.vocabulary import StaffMember
from mailbot.store.models import (
    Case,
    Disposition,
    Inbound,
    MessageKind,
)

log = logging.getLogger(__name__)


class StaffDesk:
    """Handles a message from a listed staff address: verified, its commands decided."""

    def __init__(
        self, settings: Settings, casefile: Casefile, clock: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.casefile = casefile
        self.clock = clock

    def handle(
        self,
        session: Session,
        inbound: Inbound,
        parsed: ParsedMessage,
        case: Case | None,
        member: StaffMember,
    ) -> Outcome:
        auth = self.settings.staff_auth
        verdict = verify_sender(
            parsed, auth.trusted_authserv_ids, auth.require, auth.exchange_online_tenant_id
        )
        if not verdict.verified:
            return self._unverified(session, inbound, parsed, case, member, verdict.reason)

        casefile, now = self.casefile, self.clock()
        reply = read_commands(trim_reply(parsed.text), Role(member.role))
        state = casefile.state(session, case) if case is not None else None
        errors = list(reply.errors) + t.staff_refusals(state, reply, casefile.policy)
        names = {c.name for c in reply.commands}
        inbound.kind = MessageKind.STAFF_NOTE if "note" in names else MessageKind.STAFF_REPLY
        if errors:
            refused = "refused: " + "; ".join(errors)
            effects: list[t.Effect] = [self._error(case, member, parsed, errors)]
            if case is None:
                outcome = set_aside(inbound, Disposition.IGNORED, f"staff message {refused}")
                outcome.queued += casefile.apply(session, None, effects).queued
                return outcome
            return self.casefile.file(
                session, inbound, case, [t.Attach(member.email, refused), *effects]
            )

        if case is None or state is None:  # staff_refusals made sure this message says #new
            [new] = reply.commands
            email, _, name = new.argument.partition(" ")
            found = find_details(name.strip(), reply.text)
            created = casefile.open_case(
                session, email.strip("<>"), name.strip(), parsed.subject, inbound.received_at, found
            )
            phrases = self.settings.procedure.deadlock_phrases
            words = deadlock_request(reply.text, phrases)
            outcome = casefile.complaint(
                session, inbound, created, member.email, reply.text, found, [], words
            )
            done = [f"opened case {created.ref} for {email.strip('<>')} and acknowledged it"]
            confirm = self._confirm(created.ref, created.subject, member, parsed, done)
            outcome.queued += casefile.apply(session, created, confirm).queued
            return outcome

        recipients = frozenset(a.email.lower() for a in (*parsed.to, *parsed.cc))
        effects, done = t.staff_replied(state, member, reply, recipients, now, casefile.policy)
        effects += self._confirm(case.ref, case.subject, member, parsed, done)
        return self.casefile.file(session, inbound, case, effects)

    def _confirm(
        self, ref: str, subject: str, member: StaffMember, parsed: ParsedMessage, done: list[str]
    ) -> list[t.Effect]:
        if not self.settings.notifications.confirm_staff_commands:
            return []
        return [
            t.ToStaff(
                member,
                MessageKind.STAFF_CONFIRMATION,
                "staff_confirmation",
                f"[{ref}] Done: {parsed.subject or subject}",
                parsed.message_id,
                {"done": done},
            )
        ]

    def _error(
        self, case: Case | None, member: StaffMember, parsed: ParsedMessage, errors: list[str]
    ) -> t.ToStaff:
        prefix = f"[{case.ref}] " if case else ""
        return t.ToStaff(
            member,
            MessageKind.STAFF_ERROR,
            "staff_error",
            f"{prefix}Not done: {parsed.subject or '(no subject)'}",
            parsed.message_id,
            {"errors": errors, "subject": parsed.subject, "known": known()},
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
        alerts: list[t.Effect] = [
            t.ToStaff(
                manager,
                MessageKind.SECURITY_ALERT,
                "security_alert",
                f"Unverified message from {member.email}: {parsed.subject or '(no subject)'}",
                None,
                {
                    "claimed": member.email,
                    "subject": parsed.subject,
                    "message_id": parsed.message_id,
                    "reason": reason,
                },
            )
            for manager in self.settings.staff_with_role("manager")
        ]
        if case is not None:
            return self.casefile.file(session, inbound, case, [t.Attach(t.RULE, why), *alerts])
        outcome = set_aside(inbound, Disposition.QUARANTINED, why)
        outcome.queued += self.casefile.apply(session, None, alerts).queued
        return outcome
