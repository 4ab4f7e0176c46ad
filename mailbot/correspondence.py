"""Every letter mailbot writes, to customers and to staff: rendered, threaded and queued."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mailbot.config import Settings, StaffSettings
from mailbot.layout import phone_link, web_link
from mailbot.mail.compose import Letter
from mailbot.mail.parse import Address
from mailbot.mail.trim import split_sign_off
from mailbot.outbox import OutboxWriter, Queued
from mailbot.procedure import transitions as t
from mailbot.procedure.commands import COMMANDS, known
from mailbot.procedure.details import Detail
from mailbot.procedure.needs import COPY_FORMATS, LARGE_PRINT, PLAIN_TEXT, Need, letter_format
from mailbot.procedure.personal_data import DATA_PROTECTION
from mailbot.procedure.vocabulary import StaffMember
from mailbot.store import cases, db
from mailbot.store.db import Session
from mailbot.store.models import (
    Case,
    Level,
    MessageKind,
    OutboundStatus,
)
from mailbot.templating import Templates

DETAIL_HELP = {
    Detail.NAME: "your full name",
    Detail.CONTACT: "how you would prefer us to contact you (email or a phone number)",
    Detail.SERVICE: "details of your service, such as your account number or the service "
    "your complaint is about",
    Detail.OUTLINE: "an outline of your complaint: what happened, and what you would like us to do",
}

_MOST_REFERENCES = 20  # enough to thread in every client, short enough for every server


ROLE_TITLES = {
    "agent": "Complaints Adviser",
    "team_leader": "Team Leader",
    "manager": "Complaints Manager",
    "dpo": "Data Protection Officer",
}
# how the handlers are asked to make a copy of a letter in the customer's format
FORMAT_WORDS = {
    "braille": "in Braille",
    "audio": "as audio",
    "easy-read": "in Easy Read",
    "other": "in the format recorded on the case",
}
# the letters that say what the complaint was in the customer's own words
QUOTE_THE_COMPLAINT = frozenset({MessageKind.DEADLOCK_LETTER})
_MOST_QUOTED = 400  # characters of the customer's complaint a letter quotes back


@dataclass(frozen=True)
class Said:
    """The latest thing a member of staff told the customer, as the case recorded it."""

    at: datetime
    name: str
    member: StaffMember | None  # None: no longer listed in [[staff]]
    words: str


def case_subject(case: Case) -> str:
    """The one subject of every mail about CASE, to the customer and to staff alike."""
    return f"[{case.ref}] {case.subject or 'Your complaint'}"


def team_name(settings: Settings) -> str:
    """Who letters come from: the company's complaints team (or [smtp] from_name)."""
    return settings.smtp.from_name or f"{settings.procedure.company_name} complaints team"


def letter_links(settings: Settings) -> dict[str, str]:
    """What the HTML of a letter links: the scheme's and our addresses, staff phones."""
    adr = settings.adr_scheme
    links = {
        adr.website: web_link(adr.website),
        adr.email: f"mailto:{adr.email}",
        adr.phone: phone_link(adr.phone),
        settings.procedure.code_url: web_link(settings.procedure.code_url),
        settings.smtp.from_address: f"mailto:{settings.smtp.from_address}",
    }
    for member in settings.staff:
        if member.phone:
            links[member.phone] = phone_link(member.phone)
    return links


class Correspondence:
    """Writes the letters of the procedure into the outbox, in the caller's transaction."""

    def __init__(self, settings: Settings, templates: Templates, outbox: OutboxWriter) -> None:
        self.settings = settings
        self.templates = templates
        self.outbox = outbox
        self.team = team_name(settings)

    # -- to the customer ----------------------------------------------------------------

    def acknowledgement(self, session: Session, case: Case, missing: Sequence[Detail]) -> bool:
        """Queue the acknowledgement; False if it was held back (a bounce, a cap, an address).

        R2's choice: with procedure.acknowledge_out_of_hours = false, one queued outside
        business time goes at the next opening.
        """
        row = self._to_customer(
            session,
            case,
            MessageKind.ACKNOWLEDGEMENT,
            {"missing": list(missing), "detail_help": DETAIL_HELP},
            auto_submitted="auto-replied",
            business_time_only=not self.settings.procedure.acknowledge_out_of_hours,
        )
        return row.status != OutboundStatus.HELD

    def staff_reply(self, session: Session, case: Case, member: StaffMember, text: str) -> Queued:
        """Relay a staff member's words to the customer, signed by them once (their own
        sign-off, or ours with their name): its row (HELD if it was held back)."""
        own = split_sign_off(text, member.name).sign_off
        return self._to_customer(
            session,
            case,
            MessageKind.STAFF_REPLY,
            {"text": text, "member": member, "signed": bool(own)},
            auto_submitted=None,
            signatory=member,
            author=member.email,
        )

    def to_customer(
        self, session: Session, case: Case, kind: MessageKind, signed_by: str = "", **context: Any
    ) -> Queued:
        """Letter KIND (templates/KIND.txt.j2) to the customer, signed by the member of staff
        SIGNED_BY if they are one: its row (HELD if it was held back)."""
        return self._to_customer(
            session,
            case,
            kind,
            context,
            auto_submitted="auto-generated",
            signatory=self.settings.staff_member(signed_by) if signed_by else None,
        )

    def _to_customer(
        self,
        session: Session,
        case: Case,
        kind: MessageKind,
        context: dict[str, Any],
        auto_submitted: str | None,
        signatory: StaffMember | None = None,
        author: str = "",
        business_time_only: bool = False,
    ) -> Queued:
        letter = self.customer_letter(
            session, case, kind, context, auto_submitted, signatory, author
        )
        queued = self.outbox.queue(session, case, kind, letter, business_time_only)
        if queued.status != OutboundStatus.HELD:  # R3: the customer hears from us when it goes
            case.last_customer_contact_at = queued.next_attempt_at
        need = letter_format(cases.needs_of(case))
        if need in COPY_FORMATS:  # by email too, and a copy made by hand
            self.format_copy(session, case, kind, letter, need)
        return queued

    def format_copy(
        self, session: Session, case: Case, kind: MessageKind, letter: Letter, need: str
    ) -> None:
        """Ask the case's handlers, with LETTER attached, to make and send a copy of it in
        the customer's format NEED (one note per letter, so that none is forgotten)."""
        note = [n.note for n in cases.needs_of(case) if n.need == need][-1:]
        for member in self.handlers(case):
            self.to_staff(
                session,
                case,
                member,
                MessageKind.FORMAT_COPY_NEEDED,
                "format_copy_needed_staff",
                "",
                None,
                attached=(f"{case.ref}-{kind}.txt", letter.text),
                need=need,
                format_words=FORMAT_WORDS[need],
                note=note[0] if note else "",
                letter_kind=str(kind).replace("_", " "),
            )

    def customer_letter(
        self,
        session: Session,
        case: Case,
        kind: MessageKind,
        context: dict[str, Any],
        auto_submitted: str | None = "auto-generated",
        signatory: StaffMember | None = None,
        author: str = "",
    ) -> Letter:
        """Letter KIND to CASE's customer as it would go now (`mailbot letters preview`)."""
        if kind in QUOTE_THE_COMPLAINT:
            context = {**context, "complained": self._complaint_words(session, case)}
        said = self.last_said(session, case)
        writer = said.member if said else None
        if writer is not None and case.level == Level.MANAGER and writer.role != "manager":
            writer = None  # escalated: the managers handle it now, and one of them signs
        signer = signatory or writer or self.lead(case)
        need = letter_format(cases.needs_of(case))
        text, html = self.templates.letter(
            str(kind),
            self._context(
                case, said=said, signatory=signer, large_print=need == LARGE_PRINT, **context
            ),
        )
        in_reply_to, references = thread_of(session, case)
        return Letter(
            to_address=case.customer_email,
            to_name=case.customer_name,
            subject=case_subject(case),
            text=text,
            html=None if need == PLAIN_TEXT else html,  # a plain-text need: no HTML part
            in_reply_to=in_reply_to,
            references=references,
            auto_submitted=auto_submitted,
            from_name=self.team,
            author=author,
        )

    def last_said(self, session: Session, case: Case) -> Said | None:
        """What a member of staff last told the customer (None: nobody has yet)."""
        if case.first_staff_reply_at is None:  # no query for a case no one has answered
            return None
        event = cases.latest_event(session, case.id, t.SAID_TO_CUSTOMER)
        if event is None or not event.detail:
            return None
        member = self.settings.staff_member(event.actor)
        return Said(event.at, member.name if member else event.actor, member, event.detail)

    def lead(self, case: Case) -> StaffMember | None:
        """Who signs CASE's letters when nobody has written to the customer yet."""
        return next(iter(self.handlers(case)), None)

    def _complaint_words(self, session: Session, case: Case) -> str:
        """The opening of the customer's complaint, as a letter quotes it back."""
        return shortened(cases.complaint_text(session, case.id), _MOST_QUOTED)

    def too_large(
        self,
        session: Session,
        sender: Address,
        subject: str,
        message_id: str,
        size: int,
        limit: int,
    ) -> None:
        """Tell SENDER their message was too large to process (it is kept, not lost)."""
        mb = 1024 * 1024
        text, html = self.templates.letter(
            "too_large",
            self._context(
                None,
                name=sender.name,
                subject=subject,
                size_mb=f"{size / mb:.1f}",
                limit_mb=f"{limit / mb:.0f}",
            ),
        )
        letter = Letter(
            to_address=sender.email,
            to_name=sender.name,
            subject=f"Re: {subject}" if subject else "Your email to us",
            text=text,
            html=html,
            in_reply_to=message_id,
            references=[message_id],
            auto_submitted="auto-replied",
            from_name=self.team,
        )
        self.outbox.queue(session, None, MessageKind.TOO_LARGE, letter)

    # -- to staff -------------------------------------------------------------------------

    def handlers(self, case: Case) -> Sequence[StaffMember]:
        """Who handles CASE: the team leaders, or the managers once escalated (R4); and the
        data protection officers when it is about personal data."""
        role = "manager" if case.level == Level.MANAGER else "team_leader"
        found: list[StaffMember] = list(
            self.settings.staff_with_role(role) or self.settings.staff_with_role("manager")
        )
        if DATA_PROTECTION in case.flag_set():
            found = [*found, *(m for m in self.role("dpo") if m not in found)]
        return found

    def role(self, role: str) -> Sequence[StaffMember]:
        """The staff with ROLE; for the DPO's letters, the managers when no DPO is listed."""
        found = self.settings.staff_with_role(role)
        if not found and role == "dpo":
            return self.settings.staff_with_role("manager")
        return found

    def to_role(
        self,
        session: Session,
        case: Case,
        role: str,
        kind: MessageKind,
        also_handlers: bool = False,
        **context: Any,
    ) -> None:
        """Letter KIND (templates/KIND_staff.txt.j2) to all staff with ROLE (and, if
        ALSO_HANDLERS, the case's handlers), each once."""
        members: list[StaffMember] = list(self.role(role))
        if also_handlers:
            members += [h for h in self.handlers(case) if h.email not in {m.email for m in members}]
        for member in members:
            self.to_staff(session, case, member, kind, f"{kind}_staff", "", None, **context)

    def staff_notification(
        self,
        session: Session,
        case: Case,
        headline: str,
        text: str,
        missing: Sequence[Detail] = (),
        attachments: Sequence[str] = (),
        support: Sequence[str] = (),
    ) -> None:
        """Tell the case's handlers what the customer wrote (first, SUPPORT: the sentences
        that suggest a need); a plain Reply comes back to us."""
        body = self.templates.render(
            "staff_notification",
            self._context(
                case,
                headline=headline,
                text=text,
                missing=list(missing),
                attachments=list(attachments),
                commands=COMMANDS.values(),
                support=list(support),
            ),
        )
        self._to_handlers(session, case, body)

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
        body = self.templates.render(
            "third_party_staff",
            self._context(
                case,
                writer=writer,
                text=text,
                deadlock_words=deadlock_words,
                attachments=list(attachments),
            ),
        )
        self._to_handlers(session, case, body)

    def _to_handlers(self, session: Session, case: Case, body: str) -> None:
        in_reply_to, references = thread_of(session, case)
        for member in self.handlers(case):
            letter = Letter(
                to_address=member.email,
                to_name=member.name,
                subject=case_subject(case),
                text=body,
                in_reply_to=in_reply_to,
                references=references,
                reply_to=self.settings.smtp.from_address,
                from_name=self.team,
            )
            self.outbox.queue(session, case, MessageKind.STAFF_NOTIFICATION, letter)

    def letter_held(
        self, session: Session, case: Case, letter: str, address: str, reason: str
    ) -> None:
        """Tell the managers at once that LETTER to ADDRESS was held back (REASON): it must
        reach the customer another way (the team leaders, if no managers are listed)."""
        kind = MessageKind.LETTER_HELD
        self._to_managers(session, case, kind, letter=letter, address=address, reason=reason)

    def _to_managers(
        self,
        session: Session,
        case: Case,
        kind: MessageKind,
        enclosed: tuple[str, bytes] | None = None,
        **context: Any,
    ) -> None:
        """Letter KIND (templates/KIND_staff.txt.j2) to the managers, or to the team leaders
        if no managers are listed: a duty to the customer that mail could not meet."""
        managers = self.settings.staff_with_role("manager")
        for member in managers or self.settings.staff_with_role("team_leader"):
            self.to_staff(
                session, case, member, kind, f"{kind}_staff", "", None, enclosed=enclosed, **context
            )

    def to_print(
        self, session: Session, case: Case, message_id: str, kind: str, reason: str
    ) -> None:
        """Tell the managers at once (the team leaders, if no managers are listed) that our
        letter MESSAGE_ID, an ADR notice or deadlock letter, bounced (REASON): it must go by
        post, and `#sent-by-post DATE` records it. The letter goes with it, for printing."""
        [letter] = db.outbound_by_message_ids(session, [message_id])
        self._to_managers(
            session,
            case,
            MessageKind.BY_POST,
            (f"{kind}-{case.ref}.eml", letter.raw),
            letter=t.HELD_LETTERS[MessageKind(kind)],
            address=letter.to_address,
            reason=reason,
            sent=self.templates.when(letter.sent_at) if letter.sent_at else "",
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
        attached: tuple[str, str] | None = None,
        enclosed: tuple[str, bytes] | None = None,
        **context: Any,
    ) -> None:
        """A short letter to one member of staff (a confirmation, an error, an alert): about
        a case, under its one subject and in its thread; else TITLE, answering IN_REPLY_TO;
        ATTACHED: a text file it carries (file name, text)."""
        body = self.templates.render(template, {**self._context(case), "member": member, **context})
        references = [in_reply_to] if in_reply_to else []
        if case is not None:
            parent, thread = thread_of(session, case)
            references = _references([*thread, *references])
            in_reply_to = in_reply_to or parent
        letter = Letter(
            to_address=member.email,
            to_name=member.name,
            subject=case_subject(case) if case is not None else title,
            text=body,
            in_reply_to=in_reply_to,
            references=references,
            reply_to=self.settings.smtp.from_address,
            from_name=self.team,
            attached=attached,
            enclosed=enclosed,
        )
        self.outbox.queue(session, case, kind, letter)

    def _context(self, case: Case | None, **extra: Any) -> dict[str, Any]:
        return letter_context(self.settings, self.templates, case, self.outbox.clock(), **extra)


def shortened(text: str, most: int) -> str:
    """TEXT cut at a word to at most MOST characters, "..." saying it was cut."""
    text = " ".join(text.split())
    if len(text) <= most:
        return text
    return text[:most].rsplit(" ", 1)[0].rstrip(",.;:") + " ..."


def letter_context(
    settings: Settings, templates: Templates, case: Case | None, now: datetime, **extra: Any
) -> dict[str, Any]:
    """What a letter's template sees: the settings it names, CASE's dates, and EXTRA."""
    p = settings.procedure
    today = templates.day(now)
    context: dict[str, Any] = {
        "case": case,
        "company_name": p.company_name,
        "team": team_name(settings),
        "code_url": p.code_url,
        "adr": settings.adr_scheme,
        "hours": f"{p.opening_time} and {p.closing_time}",
        "complaints_address": settings.smtp.from_address,
        "today": today,
        "letter_day": today,  # the date the ADR scheme's time limit counts from
        "said": None,
        "signatory": None,
        "role_titles": ROLE_TITLES,
        "needs": cases.needs_of(case) if case is not None else (),  # atop staff letters
        "support": (),  # the customer's sentences that suggest a need (a staff copy's)
        "large_print": False,  # the HTML laid out for large print (a customer's need)
    }
    if case is not None:
        context |= {
            "customer_name": case.customer_name,
            "due": templates.when(case.first_response_due),
            "received": templates.when(case.received_at),
            "adr_date": templates.day(case.adr_date),
            "adr_open": case.adr_date <= now,
            "received_day": templates.day(case.received_at),
            "referral_limit_months": settings.adr_scheme.referral_limit_months,
        }
    return context | extra


# the letters that go to a person as letters: a text part and an HTML part (Templates.letter)
PERSON_LETTERS = frozenset(
    {
        MessageKind.ACKNOWLEDGEMENT,
        MessageKind.STAFF_REPLY,
        MessageKind.UPDATE,
        MessageKind.ADR_NOTICE,
        MessageKind.ESCALATION_NOTICE,
        MessageKind.RESOLUTION,
        MessageKind.DEADLOCK_LETTER,
        MessageKind.DEADLOCK_REFUSAL,
        MessageKind.MERGE_NOTICE,
        MessageKind.SUBJECT_ACCESS_EXTENDED,
        MessageKind.TOO_LARGE,
    }
)


def specimen_case(settings: Settings) -> Case:
    """The sample case of the start-up check and of `mailbot letters preview`."""
    received = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    ref = settings.procedure.case_ref_format
    return Case(
        ref=ref.format(year=2026, number=42),
        customer_email="pat@example.com",
        customer_name="Pat Example",
        subject="My broadband keeps dropping",
        received_at=received,
        first_response_due=received + timedelta(days=3),
        adr_date=received + timedelta(weeks=settings.procedure.adr_wait_weeks),
        resolution_summary="We found a fault on the line at the street cabinet and repaired it "
        "on 27 November, and we have refunded a month's charge (£32.99) to your account",
        reopened_from=ref.format(year=2026, number=41),
    )


def specimens(
    settings: Settings, templates: Templates, case: Case | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Every letter kind with a sample context shaped like its callers', every branch taken
    (about CASE, else the sample case).

    Start-up renders each once (`Templates.check`), so that a missing or broken template stops
    start-up rather than a customer's mail: a letter's caller and its specimen change together.
    """
    case = case or specimen_case(settings)
    received = case.received_at
    now = received + timedelta(days=12)
    member = next(
        iter(settings.staff_with_role("team_leader") or settings.staff),
        StaffSettings(email="terry@example.com", name="Terry Leader", role="team_leader"),
    )
    manager = next(
        iter(settings.staff_with_role("manager")),
        StaffSettings(email="morgan@example.com", name="Morgan Manager", role="manager"),
    )
    said = Said(
        received + timedelta(days=4),
        member.name,
        member,
        "Our engineer found a fault at the street cabinet this morning and has booked a "
        "repair for Thursday. I will write again once it is done.",
    )

    def of(about: Case | None, **extra: Any) -> dict[str, Any]:
        return letter_context(settings, templates, about, now, **extra)

    def to_customer(**extra: Any) -> dict[str, Any]:
        return of(case, **{"said": said, "signatory": member, **extra})

    def to_staff(about: Case | None = case, **extra: Any) -> dict[str, Any]:
        return {**of(about), "member": member, **extra}

    words = "The connection drops every evening."
    reply = f"{said.words}\n\nKind regards,\n{member.name.split()[0]}"
    complained = (
        "My broadband has been dropping every evening since 10 November, for minutes at a "
        "time. I work from home and cannot rely on it."
    )
    return [
        ("acknowledgement", to_customer(missing=list(Detail), detail_help=DETAIL_HELP)),
        ("staff_reply", to_customer(text=reply, member=member, signed=True)),
        (MessageKind.UPDATE, to_customer(next_update=now + timedelta(days=1))),
        (MessageKind.ADR_NOTICE, to_customer(weeks=settings.procedure.adr_wait_weeks)),
        (
            MessageKind.ESCALATION_NOTICE,
            to_customer(signatory=manager, next_update=now + timedelta(days=1)),
        ),
        (
            MessageKind.RESOLUTION,
            to_customer(reopen_days=settings.procedure.reopen_days, adr_from=case.adr_date),
        ),
        (
            MessageKind.DEADLOCK_LETTER,
            to_customer(
                position="We have repaired the line and refunded a month's charge, which we "
                "believe puts things right. We cannot offer the further compensation you asked "
                "for, as the service was restored within the time our contract promises.",
                copy=True,
                sent_at=now,
                complained=complained,
            ),
        ),
        (MessageKind.DEADLOCK_REFUSAL, to_customer(reason=words)),
        (MessageKind.DEADLOCK_REFUSAL, to_customer(reason=words, large_print=True)),  # its styles
        (MessageKind.MERGE_NOTICE, to_customer(merged_ref=ref_of(case, 43))),
        (
            MessageKind.SUBJECT_ACCESS_EXTENDED,
            to_customer(
                due=date(2027, 2, 20),
                reason="your request covers six years of calls and letters, kept in three systems",
                months=2,
                requested=received,
            ),
        ),
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
                support=["I am registered blind and cannot read your letters."],
                needs=[Need(LARGE_PRINT, "18pt at least", member.email, received)],
            ),
        ),
        (f"{MessageKind.FIRST_RESPONSE_OVERDUE}_staff", to_staff()),
        *[
            (
                f"{MessageKind.SUBJECT_ACCESS_DUE}_staff",
                to_staff(due=now.date(), stage=stage, words="a copy of my data", extended=extended),
            )
            for stage, extended in (("new", False), ("week", False), ("day", True), ("late", True))
        ],
        (
            f"{MessageKind.FORMAT_COPY_NEEDED}_staff",
            to_staff(
                need="braille",
                format_words=FORMAT_WORDS["braille"],
                note="Grade 2 Braille",
                letter_kind="update",
            ),
        ),
        *[
            (
                f"{MessageKind.ADR_CASE_FILE_DUE}_staff",
                to_staff(due=now.date() + timedelta(days=1), scheme_ref="OS-123456", when=when),
            )
            for when in ("coming", "today", "passed")
        ],
        *[
            (
                f"{MessageKind.REMEDY_DUE}_staff",
                to_staff(stage=stage, due=now.date(), remedy="Refund £32.99 and apologise"),
            )
            for stage in ("week", "day", "late")
        ],
        (f"{MessageKind.ESCALATION_NOTICE}_staff", to_staff(actor=member.email, reason=words)),
        *[
            (MessageKind.STAFF_CONFIRMATION, to_staff(about, done=["resolved"]))
            for about in (case, None)  # a #release names no case
        ],
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
        (
            "by_post_staff",
            to_staff(
                letter="the deadlock letter",
                address=case.customer_email,
                reason=f"{case.customer_email} 5.1.1 permanent",
                sent=templates.when(now),
            ),
        ),
        (MessageKind.ADMIN_ALERT, {"title": "SMTP gave up", "text": words}),  # outbox.alert's
        (
            "held_list_staff",  # held.held_context's shape
            {
                "folder": settings.mailbox.held_folder,
                "needs": (),
                "support": (),
                "messages": [
                    {
                        "id": 12,
                        "sender": case.customer_email,
                        "subject": case.subject,
                        "words": shortened(complained, 160),
                        "reason": "SpamAssassin: score 5.4",
                        "received": received,
                    }
                ],
            },
        ),
    ]


def ref_of(case: Case, number: int) -> str:
    """Another reference in CASE's series (a sample)."""
    return case.ref.rsplit("-", 1)[0] + f"-{number:06d}"


def specimen_letters(settings: Settings, templates: Templates) -> dict[str, Letter]:
    """Every letter kind as it would go, about the sample case (`mailbot letters render`)."""
    case = specimen_case(settings)
    staff = next(
        iter(settings.staff), StaffSettings(email="terry@example.com", name="Terry", role="agent")
    )
    thread = [f"<complaint.{case.ref}@example.com>"]
    letters: dict[str, Letter] = {}
    for kind, context in specimens(settings, templates, case):
        if kind in letters:
            continue  # a second sample of a kind takes its other branches at start-up
        person = kind in PERSON_LETTERS
        text, html = (
            templates.letter(kind, context) if person else (templates.render(kind, context), None)
        )
        letters[kind] = Letter(
            to_address=case.customer_email if person else staff.email,
            to_name=case.customer_name if person else staff.name,
            subject=case_subject(case),
            text=text,
            html=html,
            in_reply_to=thread[-1],
            references=thread,
            from_name=team_name(settings),
        )
    return letters


def _references(ids: Sequence[str]) -> list[str]:
    """A thread's References: its first message and its latest, in time order."""
    return [*ids[:1], *ids[1:][-(_MOST_REFERENCES - 1) :]]


def thread_of(session: Session, case: Case) -> tuple[str | None, list[str]]:
    """In-Reply-To (the customer's latest message, else our latest letter) and References
    (the thread's first and latest messages, in time order) for a mail about CASE."""
    thread = cases.customer_thread(session, case)
    theirs = [message_id for _, ours, message_id in thread if not ours]
    ids = [message_id for _, _, message_id in thread]
    return (theirs[-1] if theirs else ids[-1] if ids else None), _references(ids)
