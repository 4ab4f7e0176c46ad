"""One inbound message -> raw bytes kept, then case changes and outbox rows in one transaction."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailbot.apply import Casefile
from mailbot.config import Settings
from mailbot.mail.classify import Sender
from mailbot.mail.fingerprint import content_sha256
from mailbot.mail.parse import (
    ParsedMessage,
    generated_message_id,
    header_block,
    repair_header_block,
    split_header_block,
)
from mailbot.mail.read import Reader, Reading
from mailbot.outcome import Outcome, our_fault
from mailbot.procedure.case import ReturnedLetter
from mailbot.procedure.commands import named_cases, release_ids
from mailbot.procedure.route import Arrival, Thread, route
from mailbot.procedure.vocabulary import Disposition
from mailbot.store import cases, db, held
from mailbot.store import inbound as stored
from mailbot.store.connection import conflict
from mailbot.store.db import Engine, Session
from mailbot.store.models import Case, Inbound
from mailbot.store.outbox import last_letters_to

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def ref_pattern(case_ref_format: str) -> re.Pattern[str]:
    """A regex finding "[REF]" in a subject, built from the configured reference format."""
    pieces = re.split(r"(\{year\}|\{number[^}]*\})", case_ref_format)
    regex = "".join(
        r"\d{4}" if p == "{year}" else r"\d+" if p.startswith("{number") else re.escape(p)
        for p in pieces
    )
    return re.compile(r"\[\s*(" + regex + r")\s*\]", re.IGNORECASE)


def message_id_of(raw: bytes, fingerprint: str) -> str:
    """The Message-ID, read from the headers alone so the raw bytes can be stored first."""
    cut = split_header_block(raw)
    head = cut[0] + b"\n\n" if cut else raw  # the parser stops at the blank line anyway
    head = repair_header_block(head, [])  # as parse_message reads it: a bad fold hides none
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    except Exception:  # a header block bad enough to break the parser still gets an id
        value = None
    found = re.search(r"<[^<>\s]+>", str(value or ""))
    return found.group(0) if found else generated_message_id(fingerprint)


class Intake:
    """Receives messages, in stages: store (commit) -> read -> load state -> route -> apply.

    The mailbox move comes after the commit (App.poll); one message's path:
    `store` keeps its bytes, then `process` reads it (mail.read), loads the case it threads
    onto (`load`), asks the procedure what it means (procedure.route) and writes that
    (Casefile.apply_message).
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        casefile: Casefile,
        reader: Reader,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.casefile = casefile
        self.reader = reader
        self.clock = clock
        self.ref_regex = ref_pattern(settings.procedure.case_ref_format)

    def receive(self, raw: bytes, received_at: datetime, source: str) -> Outcome:
        """Store RAW (committed), then process it; a message already processed is skipped."""
        [kept] = self.store([(raw, received_at, source)])
        return kept if isinstance(kept, Outcome) else self.process(kept)

    # -- 1. store: the bytes kept before anything parses them -----------------------------

    def store(self, messages: Sequence[tuple[bytes, datetime, str]]) -> list[int | Outcome]:
        try:
            return self._store(messages)
        except Exception as error:  # another daemon stored some of them first: read theirs
            if not conflict(error):
                raise
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
            fingerprint = content_sha256(raw)  # a second delivery differs only in trace headers
            keys.append((message_id_of(raw, fingerprint), fingerprint))
        with Session(self.engine) as session:
            known = {
                (row.message_id, row.content_sha256): row
                for row in stored.messages_by_message_id(session, (k[0] for k in keys))
            }
            for (raw, received_at, source), key in zip(messages, keys, strict=True):
                earlier = known.get(key)
                if key in fresh:  # twice in this batch: the first copy is processed
                    result.append(Outcome(key[0], Disposition.RECEIVED, duplicate=True))
                elif earlier is None:
                    fresh[key] = len(result)
                    result.append(0)
                    rows.append(
                        {
                            "message_id": key[0],
                            "sha256": hashlib.sha256(raw).hexdigest(),
                            "content_sha256": key[1],
                            "size": len(raw),
                            "received_at": received_at,
                            "source": source,
                        }
                    )
                elif earlier.disposition is Disposition.RECEIVED:
                    assert earlier.id is not None
                    result.append(earlier.id)  # stored before a crash, never processed
                else:
                    result.append(_already(session, earlier))
            if rows:  # one INSERT for the batch, no ORM object per message
                raws = [messages[index][0] for index in fresh.values()]
                ids = stored.keep_messages(session, rows, raws)
                for index, inbound_id in zip(fresh.values(), ids, strict=True):
                    result[index] = inbound_id
            session.commit()
        return result

    # -- 2 to 5, in one transaction: read, load, route, apply ---------------------------

    def process_batch(self, inbound_ids: Sequence[int]) -> list[Outcome]:
        """Process stored messages in one transaction: one commit for the lot.

        If any message fails, nothing of the batch is kept and each is processed again on its
        own, so a bad message is quarantined alone and the rest go through.
        """
        try:
            with Session(self.engine) as session:
                claimed = stored.claim_messages(session, inbound_ids)
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
        """Process a stored message; quarantine it if that fails because of the message. A
        fault of ours (outcome.our_fault: the database, a template) leaves it stored as
        received and in the mailbox, for the next cycle."""
        for attempt in (1, 2):
            try:
                with Session(self.engine) as session:
                    claimed = stored.claim_messages(session, [inbound_id]).get(inbound_id)
                    outcome = self._process_in(session, inbound_id, claimed)
                    session.commit()
                    return outcome
            except Exception as exc:
                if conflict(exc):  # another daemon took the same case number or row first
                    if attempt == 1:
                        continue
                    log.exception("inbound %s could not be processed", inbound_id)
                    return self.quarantine(inbound_id, "processing failed: a database conflict")
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
        reading = self.read(session, inbound, raw)
        case, thread = self.load(session, reading, raw, inbound.received_at)
        held_for = inbound.reason if inbound.released_by else ""
        arrival = Arrival(inbound.received_at, inbound.size, inbound.released_by, held_for)
        effects = route(reading, arrival, thread, self.clock(), self.casefile.policy)
        outcome = self.casefile.apply_message(session, inbound, case, effects)
        session.flush()
        return outcome

    def read(self, session: Session, inbound: Inbound, raw: bytes) -> Reading:
        """2. Read: parse and classify the bytes (only the header block of one too large to
        read whole), and keep what was read on the message's row."""
        too_large = inbound.size > self.settings.limits.max_message_bytes
        reading = self.reader.read(header_block(raw) if too_large else raw, inbound.content_sha256)
        _record_parsed(session, inbound, reading.parsed)
        return reading

    def load(
        self, session: Session, reading: Reading, raw: bytes, received_at: datetime
    ) -> tuple[Case | None, Thread]:
        """3. Load state: the case the message threads onto, locked for this transaction, and
        what the procedure knows of it. A [REF] in the subject, else In-Reply-To/References;
        a bounce, a receipt or a report may name our letter only inside; one that quotes no
        Message-ID of ours names the last letter sent to its failed recipients before it came
        (RECEIVED_AT). A person's message naming none: the cases its sender opened on
        RECEIVED_AT's day (the latest locked when they are at the limit), or a staff reply's
        held messages to release."""
        parsed, bounce = reading.parsed, reading.bounce
        refs = [ref.upper() for ref in self.ref_regex.findall(parsed.subject)]
        case = cases.case_of_thread(session, refs, [*parsed.references, *parsed.in_reply_to])
        letters_to: frozenset[str] = frozenset()
        returned: tuple[ReturnedLetter, ...] = ()
        if bounce is not None:
            letters = db.outbound_by_message_ids(session, bounce.original_message_ids)
            if not letters:
                failed = {r.address for r in bounce.recipients if r.permanent}
                letters = last_letters_to(session, failed, received_at)
            letters_to = frozenset(letter.to_address for letter in letters)
            returned = tuple(
                ReturnedLetter(m.message_id, m.kind, m.to_address, m.undelivered_at is not None)
                for m in letters
                if m.case_id is not None
            )
            case = case or cases.case_of_letters(session, letters)
        elif case is None and reading.verdict.sender in (Sender.READ_RECEIPT, Sender.REPORT):
            case = db.case_by_message_ids(session, reported_ids(raw))
        case = cases.lock_case(session, cases.carried_on(session, case))
        sender = parsed.sender.email.lower() if parsed.sender else ""
        staff = self.casefile.policy.staff_member(sender) is not None
        if case is not None:
            named = {}  # the cases a staff member's commands name (#merge), locked in ref order
            if staff and not reading.verdict.is_machine:
                refs = sorted(set(named_cases(reading.new_text)))
                for other in cases.cases_by_ref(session, refs):
                    locked = cases.lock_case(session, other)
                    if locked is not None and locked.id != case.id:
                        named[locked.ref] = self.casefile.state(session, locked)
            state = self.casefile.state(session, case)
            return case, Thread(state, letters_to, named=named, returned=returned)
        if reading.verdict.is_machine or "@" not in sender:
            return None, Thread(None, letters_to, returned=returned)
        if staff:
            return None, Thread(held=held.held_among(session, release_ids(reading.new_text)))
        zone = self.casefile.policy.calendar.zone
        day = datetime.combine(received_at.astimezone(zone).date(), time(), zone)
        letters_to_them = [sender, *(a.email for a in parsed.reply_to if "@" in a.email)]
        opened = cases.opened_for(session, letters_to_them, day, day + timedelta(days=1))
        if len(opened) < self.casefile.policy.new_cases_per_sender_per_day:
            return None, Thread(opened_today=len(opened))
        latest = cases.lock_case(session, session.get(Case, opened[0]))
        assert latest is not None
        state = self.casefile.state(session, latest)
        return latest, Thread(opened_today=len(opened), latest_today=state)

    def quarantine(self, inbound_id: int, reason: str) -> Outcome:
        with Session(self.engine) as session:
            inbound = stored.message(session, inbound_id)
            inbound.disposition, inbound.reason = Disposition.QUARANTINED, reason
            session.add(inbound)
            session.commit()
            return Outcome(inbound.message_id, Disposition.QUARANTINED, reason=reason)


_REPORTED_ID = re.compile(rb"^(?:Original-)?Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.M)


def reported_ids(raw: bytes) -> list[str]:
    """The Message-IDs a report names below its own header block (RFC 8098, RFC 5965)."""
    cut = split_header_block(raw)
    body = cut[1] if cut else b""
    return [m.decode("ascii", "replace") for m in _REPORTED_ID.findall(body)]


def _already(session: Session, earlier: Inbound) -> Outcome:
    return Outcome(
        earlier.message_id,
        earlier.disposition,
        reason=earlier.reason,
        case_ref=stored.case_ref(session, earlier.case_id),
        kind=earlier.kind or "",
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
    stored.keep_attachments(session, inbound.id, rows, again=reparsed)
