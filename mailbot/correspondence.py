"""Every letter mailbot writes, to customers and to staff: rendered, threaded and queued."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, literal, union_all
from sqlalchemy import select as sql_select
from sqlmodel import Session, col

from mailbot.config import Settings, StaffMember
from mailbot.mail.compose import Letter
from mailbot.mail.parse import Address, ParsedMessage
from mailbot.outbox import OutboxWriter
from mailbot.procedure.commands import COMMANDS, known
from mailbot.procedure.details import Detail
from mailbot.store import db
from mailbot.store.models import Case, Inbound, Level, MessageKind, Outbound, OutboundStatus
from mailbot.templating import Templates

DETAIL_HELP = {
    Detail.NAME: "your full name",
    Detail.CONTACT: "how you would prefer us to contact you (email or a phone number)",
    Detail.SERVICE: "details of your service, such as your account number or the service "
    "your complaint is about",
    Detail.OUTLINE: "an outline of your complaint: what happened, and what you would like us to do",
}

_MOST_REFERENCES = 20  # enough to thread in every client, short enough for every server


class Correspondence:
    """Writes the letters of the procedure into the outbox, in the caller's transaction."""

    def __init__(self, settings: Settings, templates: Templates, outbox: OutboxWriter) -> None:
        self.settings = settings
        self.templates = templates
        self.outbox = outbox

    # -- to the customer ----------------------------------------------------------------

    def acknowledgement(self, session: Session, case: Case, missing: Sequence[Detail]) -> bool:
        """Queue the acknowledgement; False if it was held back (a bounce, a cap, an address).

        R2's choice: with procedure.acknowledge_out_of_hours = false, one queued outside
        business time goes at the next opening.
        """
        text, html = self.templates.render(
            "acknowledgement",
            self._context(case, missing=list(missing), detail_help=DETAIL_HELP),
        )
        subject = f"[{case.ref}] We have received your complaint: {case.subject or 'no subject'}"
        row = self._to_customer(
            session,
            case,
            MessageKind.ACKNOWLEDGEMENT,
            subject,
            text,
            html,
            auto_submitted="auto-replied",
            business_time_only=not self.settings.procedure.acknowledge_out_of_hours,
        )
        return row.status != OutboundStatus.HELD

    def staff_reply(self, session: Session, case: Case, member: StaffMember, text: str) -> Outbound:
        """Relay a staff member's words to the customer, signed with their name: its row
        (HELD if it was held back)."""
        body, _ = self.templates.render(
            "staff_reply", self._context(case, text=text, member=member)
        )
        return self._to_customer(
            session,
            case,
            MessageKind.STAFF_REPLY,
            f"Re: [{case.ref}] {case.subject}",
            body,
            None,
            auto_submitted=None,
            from_name=f"{member.name} ({self.settings.smtp.from_name})",
            author=member.email,
        )

    def to_customer(
        self, session: Session, case: Case, kind: MessageKind, subject: str, **context: Any
    ) -> Outbound:
        """Letter KIND (templates/KIND.txt.j2) to the customer, "[REF] SUBJECT": its row (HELD
        if it was held back)."""
        text, html = self.templates.render(str(kind), self._context(case, **context))
        return self._to_customer(
            session,
            case,
            kind,
            f"[{case.ref}] {subject}",
            text,
            html,
            auto_submitted="auto-generated",
        )

    def to_role(
        self,
        session: Session,
        case: Case,
        role: str,
        kind: MessageKind,
        headline: str,
        **context: Any,
    ) -> None:
        """Letter KIND (templates/KIND_staff.txt.j2) to all staff with ROLE: "[REF] HEADLINE"."""
        for member in self.settings.staff_with_role(role):
            self.to_staff(
                session,
                case,
                member,
                kind,
                f"{kind}_staff",
                f"[{case.ref}] {headline}: {case.subject}",
                None,
                **context,
            )

    def _to_customer(
        self,
        session: Session,
        case: Case,
        kind: MessageKind,
        subject: str,
        text: str,
        html: str | None,
        auto_submitted: str | None,
        from_name: str | None = None,
        author: str = "",
        business_time_only: bool = False,
    ) -> Outbound:
        in_reply_to, references = thread_of(session, case)
        letter = Letter(
            to_address=case.customer_email,
            to_name=case.customer_name,
            subject=subject,
            text=text,
            html=html,
            in_reply_to=in_reply_to,
            references=references,
            auto_submitted=auto_submitted,
            from_name=from_name,
            author=author,
        )
        queued = self.outbox.queue(session, case, kind, letter, business_time_only)
        if queued.status != OutboundStatus.HELD:  # R3: the customer hears from us when it goes
            case.last_customer_contact_at = queued.next_attempt_at
        return queued

    def too_large(self, session: Session, parsed: ParsedMessage, size: int, limit: int) -> None:
        """Tell a sender their message was too large to process (it is kept, not lost)."""
        assert parsed.sender is not None
        mb = 1024 * 1024
        text, _ = self.templates.render(
            "too_large",
            self._context(
                None,
                name=parsed.sender.name,
                subject=parsed.subject,
                size_mb=f"{size / mb:.1f}",
                limit_mb=f"{limit / mb:.0f}",
            ),
        )
        letter = Letter(
            to_address=parsed.sender.email,
            to_name=parsed.sender.name,
            subject=f"Re: {parsed.subject}" if parsed.subject else "Your email to us",
            text=text,
            in_reply_to=parsed.message_id,
            references=[parsed.message_id],
            auto_submitted="auto-replied",
        )
        self.outbox.queue(session, None, MessageKind.TOO_LARGE, letter)

    # -- to staff -------------------------------------------------------------------------

    def handlers(self, case: Case) -> list[StaffMember]:
        """Who handles CASE: the team leaders, or the managers once escalated (R4)."""
        role = "manager" if case.level == Level.MANAGER else "team_leader"
        return self.settings.staff_with_role(role) or self.settings.staff_with_role("manager")

    def staff_notification(
        self,
        session: Session,
        case: Case,
        headline: str,
        text: str,
        missing: Sequence[Detail] = (),
        attachments: Sequence[str] = (),
    ) -> None:
        """Tell the case's handlers what the customer wrote; a plain Reply comes back to us."""
        body, _ = self.templates.render(
            "staff_notification",
            self._context(
                case,
                headline=headline,
                text=text,
                missing=list(missing),
                attachments=list(attachments),
                commands=COMMANDS.values(),
            ),
        )
        self._to_handlers(session, case, headline, body)

    def third_party_notification(
        self,
        session: Session,
        case: Case,
        writer: Address,
        text: str,
        deadlock_words: str | None,
        attachments: Sequence[str] = (),
    ) -> None:
        """Tell the case's handlers that WRITER, not the customer, wrote about it."""
        body, _ = self.templates.render(
            "third_party_staff",
            self._context(
                case,
                writer=writer,
                text=text,
                deadlock_words=deadlock_words,
                attachments=list(attachments),
            ),
        )
        self._to_handlers(session, case, f"Third-party mail from {writer.email}", body)

    def _to_handlers(self, session: Session, case: Case, headline: str, body: str) -> None:
        in_reply_to, references = thread_of(session, case)
        for member in self.handlers(case):
            letter = Letter(
                to_address=member.email,
                to_name=member.name,
                subject=f"[{case.ref}] {headline}: {case.subject or 'no subject'}",
                text=body,
                in_reply_to=in_reply_to,
                references=references,
                reply_to=self.settings.smtp.from_address,
            )
            self.outbox.queue(session, case, MessageKind.STAFF_NOTIFICATION, letter)

    def letter_held(
        self, session: Session, case: Case, letter: str, address: str, reason: str
    ) -> None:
        """Tell the managers at once that LETTER to ADDRESS was held back (REASON): it must
        reach the customer another way (the team leaders, if no managers are listed)."""
        managers = self.settings.staff_with_role("manager")
        for member in managers or self.settings.staff_with_role("team_leader"):
            self.to_staff(
                session,
                case,
                member,
                MessageKind.LETTER_HELD,
                "letter_held_staff",
                f"[{case.ref}] {letter[:1].upper()}{letter[1:]} was not sent: {case.subject}",
                None,
                letter=letter,
                address=address,
                reason=reason,
            )

    def to_staff(
        self,
        session: Session,
        case: Case | None,
        member: StaffMember,
        kind: MessageKind,
        template: str,
        title: str,
        in_reply_to: str | None,
        **context: Any,
    ) -> None:
        """A short letter to one member of staff (a confirmation, an error, an alert)."""
        body, _ = self.templates.render(
            template, {**self._context(case), "member": member, **context}
        )
        letter = Letter(
            to_address=member.email,
            to_name=member.name,
            subject=title,
            text=body,
            in_reply_to=in_reply_to,
            references=[in_reply_to] if in_reply_to else [],
            reply_to=self.settings.smtp.from_address,
        )
        self.outbox.queue(session, case, kind, letter)

    def _context(self, case: Case | None, **extra: Any) -> dict[str, Any]:
        return letter_context(self.settings, self.templates, case, **extra)


def letter_context(
    settings: Settings, templates: Templates, case: Case | None, **extra: Any
) -> dict[str, Any]:
    """What a letter's template sees: the settings it names, CASE's dates, and EXTRA."""
    context: dict[str, Any] = {
        "case": case,
        "company_name": settings.procedure.company_name,
        "adr": settings.adr_scheme,
        "hours": f"{settings.procedure.opening_time} and {settings.procedure.closing_time}",
        "complaints_address": settings.smtp.from_address,
    }
    if case is not None:
        context |= {
            "customer_name": case.customer_name,
            "due": templates.when(case.first_response_due),
            "received": templates.when(case.received_at),
            "adr_date": templates.day(case.adr_date),
            "received_day": templates.day(case.received_at),
            "referral_limit_months": settings.adr_scheme.referral_limit_months,
        }
    return context | extra


def specimens(settings: Settings, templates: Templates) -> list[tuple[str, dict[str, Any]]]:
    """Every letter kind with a sample context shaped like its callers', every branch taken.

    Start-up renders each once (`Templates.check`), so that a missing or broken template stops
    start-up rather than a customer's mail: a letter's caller and its specimen change together.
    """
    received = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    ref = settings.procedure.case_ref_format
    case = Case(
        ref=ref.format(year=2026, number=42),
        customer_email="pat@example.com",
        customer_name="Pat Example",
        subject="My broadband keeps dropping",
        received_at=received,
        first_response_due=received + timedelta(days=3),
        adr_date=received + timedelta(weeks=settings.procedure.adr_wait_weeks),
        resolution_summary="The line fault is fixed and a month's charge refunded",
        reopened_from=ref.format(year=2026, number=41),
    )
    member = StaffMember(email="terry@example.com", name="Terry Leader", role="team_leader")

    def of(about: Case | None, **extra: Any) -> dict[str, Any]:
        return letter_context(settings, templates, about, **extra)

    def to_staff(about: Case | None = case, **extra: Any) -> dict[str, Any]:
        return {**of(about), "member": member, **extra}

    words = "The connection drops every evening."
    return [
        ("acknowledgement", of(case, missing=list(Detail), detail_help=DETAIL_HELP)),
        ("staff_reply", of(case, text=words, member=member)),
        (
            MessageKind.UPDATE,
            of(case, history=["20 November: we received your complaint"], next_words="soon"),
        ),
        (MessageKind.ADR_NOTICE, of(case, weeks=settings.procedure.adr_wait_weeks)),
        (MessageKind.ESCALATION_NOTICE, of(case)),
        (MessageKind.RESOLUTION, of(case, reopen_days=settings.procedure.reopen_days)),
        (
            MessageKind.DEADLOCK_LETTER,
            of(case, position=words, copy=True, sent_day=templates.day(received)),
        ),
        (MessageKind.DEADLOCK_REFUSAL, of(case, reason=words)),
        (
            MessageKind.TOO_LARGE,
            of(None, name="Pat", subject=case.subject, size_mb="30.1", limit_mb="25"),
        ),
        (
            MessageKind.STAFF_NOTIFICATION,
            of(
                case,
                headline="New complaint",
                text=words,
                missing=list(Detail),
                attachments=["bill.pdf"],
                commands=COMMANDS.values(),
            ),
        ),
        (f"{MessageKind.FIRST_RESPONSE_OVERDUE}_staff", to_staff()),
        (f"{MessageKind.ESCALATION_NOTICE}_staff", to_staff(actor=member.email, reason=words)),
        (MessageKind.STAFF_CONFIRMATION, to_staff(done=["resolved"])),
        *[
            (MessageKind.STAFF_ERROR, to_staff(about, errors=[words], subject="Re", known=known()))
            for about in (case, None)  # a reply naming no case gets one too
        ],
        *[
            (
                MessageKind.SECURITY_ALERT,
                to_staff(
                    about, claimed=member.email, subject="Re", message_id="<1@x>", reason=words
                ),
            )
            for about in (case, None)
        ],
        (
            "third_party_staff",
            of(
                case,
                writer=Address("Sam Other", "sam@example.net"),
                text=words,
                deadlock_words="deadlock letter",
                attachments=["bill.pdf"],
            ),
        ),
        (
            "letter_held_staff",
            to_staff(letter="the ADR notice", address=case.customer_email, reason=words),
        ),
        (MessageKind.ADMIN_ALERT, {"title": "SMTP gave up", "text": words}),  # outbox.alert's
    ]


def thread_of(session: Session, case: Case) -> tuple[str | None, list[str]]:
    """In-Reply-To (the customer's latest message) and References for a letter on CASE."""
    threads = db.transaction_cache(session, db.THREADS)
    if case.id not in threads:
        threads[case.id] = _thread_from_database(session, case)
    inbound, outbound = threads[case.id]
    references = [*inbound[:1], *[*inbound[1:], *outbound][-(_MOST_REFERENCES - 1) :]]
    return (inbound[-1] if inbound else None), references


def _thread_from_database(session: Session, case: Case) -> tuple[list[str], list[str]]:
    theirs = (
        col(Inbound.case_id) == case.id,
        col(Inbound.kind).in_([MessageKind.COMPLAINT, MessageKind.CUSTOMER_REPLY]),
    )
    ours = (
        col(Outbound.case_id) == case.id,
        col(Outbound.to_address) == case.customer_email,
        col(Outbound.status) != OutboundStatus.HELD,  # never sent: nothing to thread on
    )
    both: CompoundSelect[str, int, int] = union_all(
        sql_select(
            col(Inbound.message_id), literal(0).label("ours"), col(Inbound.id).label("n")
        ).where(*theirs),
        sql_select(
            col(Outbound.message_id), literal(1).label("ours"), col(Outbound.id).label("n")
        ).where(*ours),
    )
    rows = session.execute(both.order_by("ours", "n")).all()
    inbound = [message_id for message_id, mine, _ in rows if not mine]
    outbound = [message_id for message_id, mine, _ in rows if mine]
    return inbound, outbound
