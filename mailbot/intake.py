"""One inbound message -> raw bytes kept, then case changes and outbox rows in one transaction."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import Engine
from sqlmodel import Session

from mailbot.config import Settings
from mailbot.letters import Letters
from mailbot.mail.classify import Classification, Sender, classify
from mailbot.mail.compose import Letter, compose, new_message_id
from mailbot.mail.parse import ParsedMessage, generated_message_id, parse_message
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.details import Detail, find_details, missing_details
from mailbot.store import db
from mailbot.store.models import (
    Attachment,
    Case,
    Disposition,
    Event,
    Inbound,
    MessageKind,
    Outbound,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

_MACHINE_KINDS = {
    Sender.BOUNCE: MessageKind.BOUNCE,
    Sender.AUTO_REPLY: MessageKind.AUTO_REPLY,
    Sender.MAILING_LIST: MessageKind.MAILING_LIST,
    Sender.OWN_MAIL: MessageKind.OWN_MAIL,
}

DETAIL_HELP = {
    Detail.NAME: "your full name",
    Detail.CONTACT: "how you would prefer us to contact you (email or a phone number)",
    Detail.SERVICE: "details of your service, such as your account number or the service "
    "your complaint is about",
    Detail.OUTLINE: "an outline of your complaint: what happened, and what you would like us to do",
}


@dataclass
class Outcome:
    """What happened to one message, for the log line and the mailbox move."""

    message_id: str
    disposition: Disposition
    reason: str = ""
    case_ref: str | None = None
    new_case: bool = False
    kind: str = ""
    queued: list[str] = field(default_factory=list)
    duplicate: bool = False

    def describe(self) -> str:
        parts = [f"message_id={self.message_id}"]
        if self.duplicate:
            parts.append("duplicate: already processed")
        parts.append(f"-> {self.disposition.value}")
        if self.kind:
            parts.append(f"kind={self.kind}")
        if self.case_ref:
            parts.append(f"case={self.case_ref}{' (new)' if self.new_case else ''}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        parts.append("queued=" + (",".join(self.queued) or "nothing"))
        return " ".join(parts)


def ref_pattern(case_ref_format: str) -> re.Pattern[str]:
    """A regex finding "[REF]" in a subject, built from the configured reference format."""
    pieces = re.split(r"(\{year\}|\{number[^}]*\})", case_ref_format)
    regex = "".join(
        r"\d{4}" if p == "{year}" else r"\d+" if p.startswith("{number") else re.escape(p)
        for p in pieces
    )
    return re.compile(r"\[\s*(" + regex + r")\s*\]", re.IGNORECASE)


def message_id_of(raw: bytes, sha256: str) -> str:
    """The Message-ID, read from the headers alone so the raw bytes can be stored first."""
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
    except Exception:  # a header block bad enough to break the parser still gets an id
        value = None
    found = re.search(r"<[^<>\s]+>", str(value or ""))
    return found.group(0) if found else generated_message_id(sha256)


class Intake:
    """Receives messages: stores them, threads them onto cases, queues replies."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        calendar: BusinessCalendar,
        letters: Letters,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.calendar = calendar
        self.letters = letters
        self.clock = clock
        self.ref_regex = ref_pattern(settings.procedure.case_ref_format)
        self.own = settings.own_addresses
        self.domain = settings.smtp.from_address.rpartition("@")[2]

    def receive(self, raw: bytes, received_at: datetime, source: str) -> Outcome:
        """Store RAW (committed), then process it; a message already processed is skipped."""
        sha = hashlib.sha256(raw).hexdigest()
        message_id = message_id_of(raw, sha)
        with Session(self.engine) as session:
            stored = db.find_inbound(session, message_id, sha)
            if stored is not None and stored.disposition is not Disposition.RECEIVED:
                case = session.get(Case, stored.case_id) if stored.case_id else None
                return Outcome(
                    message_id,
                    stored.disposition,
                    reason=stored.reason,
                    case_ref=case.ref if case else None,
                    kind=stored.kind or "",
                    duplicate=True,
                )
            if stored is None:
                stored = Inbound(
                    message_id=message_id,
                    sha256=sha,
                    raw=raw,
                    size=len(raw),
                    received_at=received_at,
                    source=source,
                )
                session.add(stored)
                session.commit()
            assert stored.id is not None
            inbound_id = stored.id
        return self.process(inbound_id)

    def process(self, inbound_id: int) -> Outcome:
        """Parse, classify and thread a stored message; quarantine it if that fails."""
        try:
            with Session(self.engine) as session:
                inbound = session.get(Inbound, inbound_id)
                assert inbound is not None
                outcome = self._dispose(session, inbound)
                session.commit()
                return outcome
        except Exception as exc:
            log.exception("inbound %s could not be processed", inbound_id)
            return self.quarantine(inbound_id, f"processing failed: {type(exc).__name__}: {exc}")

    def quarantine(self, inbound_id: int, reason: str) -> Outcome:
        with Session(self.engine) as session:
            inbound = session.get(Inbound, inbound_id)
            assert inbound is not None
            inbound.disposition, inbound.reason = Disposition.QUARANTINED, reason
            session.add(inbound)
            session.commit()
            return Outcome(inbound.message_id, Disposition.QUARANTINED, reason=reason)

    def _dispose(self, session: Session, inbound: Inbound) -> Outcome:
        parsed = parse_message(inbound.raw, inbound.sha256)
        verdict = classify(parsed, self.own)
        _record_parsed(session, inbound, parsed)
        case = self._thread(session, parsed)
        if verdict.is_machine:
            return self._machine(session, inbound, verdict, case)
        if parsed.sender is None or not parsed.sender.email:
            return self._set_aside(inbound, Disposition.QUARANTINED, "no sender address")
        if case is not None:
            inbound.kind = MessageKind.CUSTOMER_REPLY
            return self._attach(session, inbound, case, actor=parsed.sender.email)
        return self._open_case(session, inbound, parsed)

    def _thread(self, session: Session, parsed: ParsedMessage) -> Case | None:
        """The case named by a [REF] in the subject, else by In-Reply-To / References."""
        for ref in self.ref_regex.findall(parsed.subject):
            case = db.case_by_ref(session, ref.upper())
            if case is not None:
                return case
        return db.case_by_message_ids(session, [*parsed.references, *parsed.in_reply_to])

    def _machine(
        self, session: Session, inbound: Inbound, verdict: Classification, case: Case | None
    ) -> Outcome:
        inbound.kind = _MACHINE_KINDS[verdict.sender]
        inbound.reason = verdict.reason
        if case is None:
            return self._set_aside(inbound, Disposition.IGNORED, verdict.reason)
        return self._attach(session, inbound, case, actor="mailbot", why=verdict.reason)

    def _set_aside(self, inbound: Inbound, disposition: Disposition, reason: str) -> Outcome:
        inbound.disposition, inbound.reason = disposition, reason
        return Outcome(inbound.message_id, disposition, reason=reason, kind=inbound.kind or "")

    def _attach(
        self, session: Session, inbound: Inbound, case: Case, actor: str, why: str = ""
    ) -> Outcome:
        assert case.id is not None and inbound.kind is not None
        inbound.case_id, inbound.disposition = case.id, Disposition.CASE
        session.add(
            Event(case_id=case.id, at=self.clock(), actor=actor, action=inbound.kind, detail=why)
        )
        return Outcome(
            inbound.message_id, Disposition.CASE, case_ref=case.ref, kind=inbound.kind, reason=why
        )

    def _open_case(self, session: Session, inbound: Inbound, parsed: ParsedMessage) -> Outcome:
        assert parsed.sender is not None
        received = inbound.received_at
        customer = parsed.reply_to[0] if parsed.reply_to else parsed.sender
        name = parsed.sender.name or customer.name
        found = find_details(name, parsed.text)
        local_year = received.astimezone(self.letters.zone).year
        case = Case(
            ref=db.next_case_ref(session, self.settings.procedure.case_ref_format, local_year),
            customer_email=customer.email,
            customer_name=name,
            subject=parsed.subject,
            received_at=received,
            details_found=",".join(sorted(found)),
            first_response_due=self.calendar.first_response_due(received),
            adr_date=received + timedelta(weeks=self.settings.procedure.adr_wait_weeks),
        )
        session.add(case)
        session.flush()
        assert case.id is not None
        inbound.kind = MessageKind.COMPLAINT
        outcome = self._attach(session, inbound, case, actor=parsed.sender.email)
        outcome.new_case = True
        self._queue_acknowledgement(session, case, parsed, missing_details(found))
        outcome.queued.append(MessageKind.ACKNOWLEDGEMENT)
        return outcome

    def _queue_acknowledgement(
        self, session: Session, case: Case, parsed: ParsedMessage, missing: list[Detail]
    ) -> None:
        settings = self.settings
        context = {
            "case": case,
            "customer_name": case.customer_name,
            "due": self.letters.when(case.first_response_due),
            "hours": f"{settings.procedure.opening_time} and {settings.procedure.closing_time}",
            "missing": missing,
            "detail_help": DETAIL_HELP,
            "adr_date": self.letters.day(case.adr_date),
            "adr": settings.adr_scheme,
            "company_name": settings.procedure.company_name,
        }
        text, html = self.letters.render("acknowledgement", context)
        letter = Letter(
            to_address=case.customer_email,
            to_name=case.customer_name,
            subject=f"[{case.ref}] We have received your complaint: {case.subject or 'no subject'}",
            text=text,
            html=html,
            in_reply_to=parsed.message_id,
            references=[*parsed.references, parsed.message_id],
            auto_submitted="auto-replied",
        )
        self.queue(session, case, MessageKind.ACKNOWLEDGEMENT, letter)

    def queue(self, session: Session, case: Case, kind: MessageKind, letter: Letter) -> Outbound:
        """Add LETTER to the outbox in the caller's transaction, its Message-ID fixed now."""
        now = self.clock()
        message_id = new_message_id(self.domain)
        raw = compose(
            letter,
            from_address=self.settings.smtp.from_address,
            from_name=self.settings.smtp.from_name,
            message_id=message_id,
            date=now,
        )
        row = Outbound(
            case_id=case.id,
            kind=kind,
            message_id=message_id,
            to_address=letter.to_address,
            subject=letter.subject,
            raw=raw,
            queued_at=now,
            next_attempt_at=now,
        )
        session.add(row)
        assert case.id is not None
        session.add(Event(case_id=case.id, at=now, actor="mailbot", action=f"queued {kind}"))
        return row


def _record_parsed(session: Session, inbound: Inbound, parsed: ParsedMessage) -> None:
    inbound.subject = parsed.subject
    inbound.from_address = parsed.sender.email if parsed.sender else ""
    inbound.from_name = parsed.sender.name if parsed.sender else ""
    inbound.in_reply_to = " ".join(parsed.in_reply_to)
    inbound.references = " ".join(parsed.references)
    inbound.text = parsed.text
    inbound.parser = parsed.parser
    assert inbound.id is not None
    for attachment in parsed.attachments:
        session.add(
            Attachment(
                inbound_id=inbound.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=len(attachment.payload),
                payload=attachment.payload,
            )
        )
