"""One inbound message -> raw bytes kept, then case changes and outbox rows in one transaction."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailbot.apply import Casefile
from mailbot.config import Settings
from mailbot.mail.bounce import BounceReport
from mailbot.mail.classify import Classification, Sender, classify
from mailbot.mail.compose import unsendable
from mailbot.mail.digest import content_digest
from mailbot.mail.parse import (
    ParsedMessage,
    generated_message_id,
    header_block,
    parse_message,
    repair_header_block,
)
from mailbot.mail.read import Reader, Reading
from mailbot.outcome import Outcome, our_fault, set_aside
from mailbot.procedure import transitions as t
from mailbot.procedure.details import Detail
from mailbot.staff import StaffDesk
from mailbot.store import db
from mailbot.store.models import (
    Attachment,
    Case,
    Disposition,
    Inbound,
    InboundRaw,
    MessageKind,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

_MACHINE_KINDS = {
    Sender.BOUNCE: MessageKind.BOUNCE,
    Sender.READ_RECEIPT: MessageKind.READ_RECEIPT,
    Sender.REPORT: MessageKind.REPORT,
    Sender.AUTO_REPLY: MessageKind.AUTO_REPLY,
    Sender.MAILING_LIST: MessageKind.MAILING_LIST,
    Sender.NOTIFICATION: MessageKind.NOTIFICATION,
    Sender.OWN_MAIL: MessageKind.OWN_MAIL,
}


def ref_pattern(case_ref_format: str) -> re.Pattern[str]:
    """A regex finding "[REF]" in a subject, built from the configured reference format."""
    pieces = re.split(r"(\{year\}|\{number[^}]*\})", case_ref_format)
    regex = "".join(
        r"\d{4}" if p == "{year}" else r"\d+" if p.startswith("{number") else re.escape(p)
        for p in pieces
    )
    return re.compile(r"\[\s*(" + regex + r")\s*\]", re.IGNORECASE)


# what a newly stored message holds beside its bytes (the model's defaults)
_INBOUND_DEFAULTS: dict[str, object] = {
    name: field.default
    for name, field in Inbound.model_fields.items()
    if name != "id" and not field.is_required()
}


def message_id_of(raw: bytes, digest: str) -> str:
    """The Message-ID, read from the headers alone so the raw bytes can be stored first."""
    ends = [at for at in (raw.find(b"\n\n"), raw.find(b"\n\r\n"), raw.find(b"\r\r")) if at >= 0]
    head = raw[: min(ends) + 3] if ends else raw  # the parser stops at the blank line anyway
    head = repair_header_block(head, [])  # as parse_message reads it: a bad fold hides none
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    except Exception:  # a header block bad enough to break the parser still gets an id
        value = None
    found = re.search(r"<[^<>\s]+>", str(value or ""))
    return found.group(0) if found else generated_message_id(digest)


class Intake:
    """Receives messages: stores them, reads them, and hands each to the procedure."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        casefile: Casefile,
        staff: StaffDesk,
        reader: Reader,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.casefile = casefile
        self.staff = staff
        self.reader = reader
        self.clock = clock
        self.ref_regex = ref_pattern(settings.procedure.case_ref_format)
        self.own = settings.own_addresses

    def receive(self, raw: bytes, received_at: datetime, source: str) -> Outcome:
        """Store RAW (committed), then process it; a message already processed is skipped."""
        [stored] = self.store([(raw, received_at, source)])
        return stored if isinstance(stored, Outcome) else self.process(stored)

    def store(self, messages: Sequence[tuple[bytes, datetime, str]]) -> list[int | Outcome]:
        try:
            return self._store(messages)
        except IntegrityError:  # another daemon stored some of them first: read theirs
            return self._store(messages)

    def _store(self, messages: Sequence[tuple[bytes, datetime, str]]) -> list[int | Outcome]:
        """Keep the raw bytes of MESSAGES in one commit, before anything parses them.

        Each becomes the id of its stored row, to process next, or the Outcome of the
        time it was already processed: same Message-ID and same content (the SHA-256 of the
        message without its trace headers, so a second delivery is known for what it is).
        """
        result: list[int | Outcome] = []
        fresh: dict[tuple[str, str], int] = {}  # new in this batch: where its id goes
        rows: list[dict[str, object]] = []
        keys = []
        for raw, _, _ in messages:
            digest = content_digest(raw)  # a second delivery differs only in trace headers
            keys.append((message_id_of(raw, digest), digest))
        with Session(self.engine) as session:
            known = {
                (row.message_id, row.content_sha256): row
                for row in session.exec(
                    select(Inbound).where(col(Inbound.message_id).in_({k[0] for k in keys}))
                )
            }
            for (raw, received_at, source), key in zip(messages, keys, strict=True):
                stored = known.get(key)
                if key in fresh:  # twice in this batch: the first copy is processed
                    result.append(Outcome(key[0], Disposition.RECEIVED, duplicate=True))
                elif stored is None:
                    fresh[key] = len(result)
                    result.append(0)
                    rows.append(
                        _INBOUND_DEFAULTS
                        | {
                            "message_id": key[0],
                            "sha256": hashlib.sha256(raw).hexdigest(),
                            "content_sha256": key[1],
                            "size": len(raw),
                            "received_at": received_at,
                            "source": source,
                        }
                    )
                elif stored.disposition is Disposition.RECEIVED:
                    assert stored.id is not None
                    result.append(stored.id)  # stored before a crash, never processed
                else:
                    result.append(_already(session, stored))
            if rows:  # one INSERT for the batch, no ORM object per message
                inserted = session.execute(
                    insert(Inbound).returning(col(Inbound.id), sort_by_parameter_order=True),
                    rows,
                )
                kept = []
                for index, inbound_id in zip(fresh.values(), inserted.scalars(), strict=True):
                    result[index] = inbound_id
                    kept.append({"inbound_id": inbound_id, "raw": messages[index][0]})
                session.execute(insert(InboundRaw), kept)
            session.commit()
        return result

    def process_batch(self, inbound_ids: Sequence[int]) -> list[Outcome]:
        """Process stored messages in one transaction: one commit for the lot.

        If any message fails, nothing of the batch is kept and each is processed again on its
        own, so a bad message is quarantined alone and the rest go through.
        """
        try:
            with Session(self.engine) as session:
                claimed = _claim(session, inbound_ids)
                outcomes = [
                    self._process_in(session, inbound_id, claimed.get(inbound_id))
                    for inbound_id in inbound_ids
                ]
                session.commit()
                return outcomes
        except Exception:
            log.debug("a batch of %d failed: one at a time", len(inbound_ids), exc_info=True)
        return [self.process(inbound_id) for inbound_id in inbound_ids]

    def process(self, inbound_id: int) -> Outcome:
        """Parse, classify and thread a stored message; quarantine it if that fails because of
        the message. A fault of ours (outcome.OUR_FAULTS: the database, a template) leaves it
        stored as received and in the mailbox, for the next cycle."""
        for attempt in (1, 2):
            try:
                with Session(self.engine) as session:
                    claimed = _claim(session, [inbound_id]).get(inbound_id)
                    outcome = self._process_in(session, inbound_id, claimed)
                    session.commit()
                    return outcome
            except IntegrityError:
                # another daemon took the same case number or row first: once more
                if attempt == 2:
                    log.exception("inbound %s could not be processed", inbound_id)
                    return self.quarantine(inbound_id, "processing failed: a database conflict")
            except Exception as exc:
                first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
                why = f"{type(exc).__name__}: {first_line}"
                if our_fault(exc):  # the message is not to blame: it stays as received
                    log.warning("inbound %s left for the next cycle: %s", inbound_id, why)
                    log.debug("inbound %s: the fault", inbound_id, exc_info=True)
                    left, which = f"to be processed again: {why}", f"inbound {inbound_id}"
                    return Outcome(which, Disposition.RECEIVED, left_in_mailbox=left)
                log.exception("inbound %s could not be processed", inbound_id)
                return self.quarantine(inbound_id, f"processing failed: {why}")
        raise AssertionError("unreachable")

    def _process_in(
        self, session: Session, inbound_id: int, claimed: tuple[Inbound, bytes] | None
    ) -> Outcome:
        if claimed is None:  # another daemon is processing it (PostgreSQL row lock)
            held = "being processed by another mailbot"
            return Outcome(f"inbound {inbound_id}", Disposition.RECEIVED, left_in_mailbox=held)
        inbound, raw = claimed
        if inbound.disposition is not Disposition.RECEIVED:
            return _already(session, inbound)  # twice in one batch, or a race
        outcome = self._dispose(session, inbound, raw)
        session.flush()
        return outcome

    def quarantine(self, inbound_id: int, reason: str) -> Outcome:
        with Session(self.engine) as session:
            inbound = session.get(Inbound, inbound_id)
            assert inbound is not None
            inbound.disposition, inbound.reason = Disposition.QUARANTINED, reason
            session.add(inbound)
            session.commit()
            return Outcome(inbound.message_id, Disposition.QUARANTINED, reason=reason)

    def _dispose(self, session: Session, inbound: Inbound, raw: bytes) -> Outcome:
        """Read INBOUND, find its case, and hand it to the procedure as what it is: a robot's
        mail, staff's, the customer's, a stranger's about a case, or a new complaint."""
        if inbound.size > self.settings.limits.max_message_bytes:
            return self._too_large(session, inbound, raw)
        reading = self.reader.read(raw, inbound.content_sha256)
        parsed, verdict = reading.parsed, reading.verdict
        _record_parsed(session, inbound, parsed)
        case = self._thread(session, parsed)
        if verdict.is_machine:
            return self._machine(session, inbound, raw, verdict, case, reading.bounce)
        if parsed.sender is None or "@" not in parsed.sender.email:
            return set_aside(inbound, Disposition.QUARANTINED, "no sender address")
        member = self.settings.staff_member(parsed.sender.email)
        if member is not None:
            return self.staff.handle(session, inbound, parsed, case, member)
        if case is not None and parsed.sender.email.lower() in case.addresses():
            return self._customer_reply(session, inbound, reading, case)
        if case is not None:  # a [REF] or a thread header proves nothing: anyone can copy one
            return self._third_party(session, inbound, reading, case)
        # letters go to the Reply-To when it holds a usable address ("Name" <> does not)
        reply_to = [a for a in parsed.reply_to if not unsendable(a.email)]
        customer = reply_to[0] if reply_to else parsed.sender
        name = parsed.sender.name or customer.name
        found = reading.details(name, parsed.text)
        case = self.casefile.open_case(
            session,
            customer.email,
            name,
            parsed.subject,
            inbound.received_at,
            found,
            other_addresses=[parsed.sender.email],  # with a Reply-To, the From is theirs too
        )
        return self._complaint(session, inbound, case, parsed.sender.email, reading, found)

    def _complaint(
        self,
        session: Session,
        inbound: Inbound,
        case: Case,
        actor: str,
        reading: Reading,
        found: frozenset[Detail],
    ) -> Outcome:
        text, attachments = reading.parsed.text, [a.filename for a in reading.parsed.attachments]
        words = reading.deadlock_words(text)
        return self.casefile.complaint(
            session, inbound, case, actor, text, found, attachments, words
        )

    def _too_large(self, session: Session, inbound: Inbound, raw: bytes) -> Outcome:
        """Keep it raw and set it aside; a person is told politely (a robot is not)."""
        limit = self.settings.limits.max_message_bytes
        # the header block is all we need
        parsed = parse_message(header_block(raw), inbound.content_sha256)
        _record_parsed(session, inbound, parsed)
        reason = f"too large: {inbound.size} bytes, limit {limit} (limits.max_message_bytes)"
        outcome = set_aside(inbound, Disposition.QUARANTINED, reason)
        if parsed.sender is not None and not classify(parsed, self.own).is_machine:
            self.casefile.correspondence.too_large(session, parsed, inbound.size, limit)
            outcome.queued.append(MessageKind.TOO_LARGE)
        return outcome

    def _thread(self, session: Session, parsed: ParsedMessage) -> Case | None:
        """The case named by a [REF] in the subject, else by In-Reply-To / References, locked
        for this transaction (Casefile.locked)."""
        with session.no_autoflush:  # only this message's parsed fields wait: no case in them
            case = next(
                (
                    found
                    for ref in self.ref_regex.findall(parsed.subject)
                    if (found := db.case_by_ref(session, ref.upper())) is not None
                ),
                None,
            ) or db.case_by_message_ids(session, [*parsed.references, *parsed.in_reply_to])
        return self.casefile.locked(session, case)

    def _machine(
        self,
        session: Session,
        inbound: Inbound,
        raw: bytes,
        verdict: Classification,
        case: Case | None,
        bounce: BounceReport | None,
    ) -> Outcome:
        inbound.kind = _MACHINE_KINDS[verdict.sender]
        inbound.reason = verdict.reason
        if verdict.sender is Sender.BOUNCE:
            assert bounce is not None  # Reader.read reads every bounce
            return self._bounce(session, inbound, case, bounce)
        if case is None and verdict.sender in (Sender.READ_RECEIPT, Sender.REPORT):
            # a receipt or report may name our letter only inside: Original-Message-ID, or
            # the Message-ID of the original it returns
            named = db.case_by_message_ids(session, reported_ids(raw))
            case = self.casefile.locked(session, named)
        if case is None:
            return set_aside(inbound, Disposition.IGNORED, verdict.reason)
        return self.casefile.file(session, inbound, case, [t.Attach(t.RULE, verdict.reason)])

    def _bounce(
        self, session: Session, inbound: Inbound, case: Case | None, report: BounceReport
    ) -> Outcome:
        """A bounce of our mail: on its case; a permanent failure stops automated mail there."""
        ours = db.outbound_by_message_ids(session, report.original_message_ids)
        case = case or next(
            (session.get(Case, o.case_id) for o in ours if o.case_id is not None), None
        )
        failed = ", ".join(
            f"{r.address} {r.status or '?'} {'permanent' if r.permanent else 'temporary'}"
            for r in report.recipients
        )
        if case is None:
            why = f"bounce: {failed or 'no recipient named'}"
            return set_aside(inbound, Disposition.IGNORED, why)
        sent_to = {o.to_address for o in ours} | {case.customer_email}
        stopped = [
            (r.address, f"{r.status or 'permanent'} bounce")
            for r in report.recipients
            if r.permanent and r.address in sent_to
        ]
        effects = t.bounced(self.casefile.state(session, case), failed, stopped)
        return self.casefile.file(session, inbound, case, effects)

    def _customer_reply(
        self, session: Session, inbound: Inbound, reading: Reading, case: Case
    ) -> Outcome:
        parsed = reading.parsed
        assert parsed.sender is not None
        state = self.casefile.state(session, case)
        policy = self.casefile.policy
        if t.too_late_to_reopen(state, inbound.received_at, policy):  # R7: a new complaint
            found = reading.details(case.customer_name, parsed.text)
            follow_on = self.casefile.open_case(
                session,
                case.customer_email,
                case.customer_name,
                parsed.subject,
                inbound.received_at,
                found,
                reopened_from=case.ref,
                other_addresses=case.addresses(),
            )
            actor = parsed.sender.email
            return self._complaint(session, inbound, follow_on, actor, reading, found)
        inbound.kind = MessageKind.CUSTOMER_REPLY
        new_text = reading.new_text
        effects = t.customer_replied(
            state,
            parsed.sender.email,
            new_text,
            [a.filename for a in parsed.attachments],
            reading.deadlock_words(new_text),
            self.clock(),
            policy,
        )
        return self.casefile.file(session, inbound, case, effects)

    def _third_party(
        self, session: Session, inbound: Inbound, reading: Reading, case: Case
    ) -> Outcome:
        """Mail naming CASE from neither its customer nor staff (transitions.stranger_wrote)."""
        parsed = reading.parsed
        assert parsed.sender is not None
        inbound.kind = MessageKind.THIRD_PARTY
        effects = t.stranger_wrote(
            parsed.sender,
            reading.new_text,
            [a.filename for a in parsed.attachments],
            reading.deadlock_words(reading.new_text),
        )
        return self.casefile.file(session, inbound, case, effects)


_REPORTED_ID = re.compile(rb"^(?:Original-)?Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.M)


def reported_ids(raw: bytes) -> list[str]:
    """The Message-IDs a report names below its own header block (RFC 8098, RFC 5965)."""
    end = re.search(rb"\r?\n\r?\n", raw)
    body = raw[end.end() :] if end else b""
    return [m.decode("ascii", "replace") for m in _REPORTED_ID.findall(body)]


def _claim(session: Session, inbound_ids: Sequence[int]) -> dict[int, tuple[Inbound, bytes]]:
    """The stored messages to process, locked, with their raw bytes (each is read next); one
    another daemon holds is left out."""
    query = (
        select(Inbound, InboundRaw.raw)
        .join(InboundRaw, col(InboundRaw.inbound_id) == col(Inbound.id))
        .where(col(Inbound.id).in_(inbound_ids))
        .with_for_update(skip_locked=True)  # outbox.CLAIM: SQLite has one writer anyway
    )
    return {row.id: (row, raw) for row, raw in session.exec(query) if row.id is not None}


def _already(session: Session, stored: Inbound) -> Outcome:
    case = session.get(Case, stored.case_id) if stored.case_id else None
    return Outcome(
        stored.message_id,
        stored.disposition,
        reason=stored.reason,
        case_ref=case.ref if case else None,
        kind=stored.kind or "",
        duplicate=True,
    )


def _record_parsed(session: Session, inbound: Inbound, parsed: ParsedMessage) -> None:
    reparsed = bool(inbound.parser)
    inbound.subject = parsed.subject
    inbound.from_address = parsed.sender.email if parsed.sender else ""
    inbound.from_name = parsed.sender.name if parsed.sender else ""
    inbound.in_reply_to = " ".join(parsed.in_reply_to)
    inbound.references = " ".join(parsed.references)
    inbound.text = parsed.text
    inbound.parser = parsed.parser
    assert inbound.id is not None
    with session.no_autoflush:  # the fields above are written with the rest of the message
        if reparsed:  # a retried message is parsed again: its attachments are stored once
            session.execute(delete(Attachment).where(col(Attachment.inbound_id) == inbound.id))
        if not parsed.attachments:
            return
        # one INSERT, no ORM object holding a payload until the commit
        rows = [
            {
                "inbound_id": inbound.id,
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": len(attachment.payload),
                "payload": attachment.payload,
            }
            for attachment in parsed.attachments
        ]
        session.execute(insert(Attachment), rows)
