"""Sending the outbox: each queued row once, retried with back-off, its answer recorded."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from mailbot.backoff import capped_delay
from mailbot.config import Settings
from mailbot.mail.compose import Letter, cannot_address, compose, new_message_id, unsendable
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.store import db
from mailbot.store.db import Engine, Session
from mailbot.store.models import Case, MessageKind, OutboundStatus
from mailbot.store.outbox import (
    CAPPED,
    Connection,
    alerted_since,
    automated_replies_since,
    bounce,
    claim_letter,
    due_letters,
    lift_bounce,
    outbox_batch,
    queue_letter,
    record_answer,
    refused_before,
    release_claim,
)
from mailbot.templating import Templates
from mailbot.transport.smtp import (
    Answer,
    SmtpCannotAddress,
    SmtpConnectionLost,
    SmtpPermanentError,
    SmtpTemporaryError,
)

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Queued:
    """A letter just queued: what the caller needs of its row."""

    status: OutboundStatus  # QUEUED, or HELD with last_error saying why
    last_error: str
    next_attempt_at: datetime  # when it may go


class OutboxWriter:
    """Queues letters in the caller's transaction, their bytes and Message-ID fixed then."""

    def __init__(
        self,
        settings: Settings,
        templates: Templates,
        clock: Callable[[], datetime],
        calendar: BusinessCalendar,
    ) -> None:
        self.settings = settings
        self.smtp = settings.smtp
        self.templates = templates
        self.clock = clock
        self.calendar = calendar
        self.domain = self.smtp.from_address.rpartition("@")[2]

    def queue(
        self,
        session: Session,
        case: Case | None,
        kind: MessageKind,
        letter: Letter,
        business_time_only: bool = False,
    ) -> Queued:
        """Queue LETTER (BUSINESS_TIME_ONLY: to go at the next opening, dated then).

        A letter that must not go (its address bounced, the cap, an address no server can
        take) is kept as a held-back row with the reason, never sent (R8: recorded, not lost).
        The row is a plain INSERT in SESSION's transaction, no ORM object: one or two go with
        every message.
        """
        now = self.clock()
        address = letter.to_address.lower()
        held = self._held_back(session, case, kind, letter, address, now)
        # queued_at is when it may go: the cap, the case's history and give_up count from there
        release = self.calendar.next_opening(now) if business_time_only and not held else now
        message_id = new_message_id(self.domain)
        raw = b""  # an address no letter can be composed for: the row keeps the reason
        if not unsendable(address):
            raw = compose(
                letter,
                from_address=self.smtp.from_address,
                from_name=self.smtp.from_name,
                message_id=message_id,
                date=release,
                kind=kind,
            )
        queued = Queued(OutboundStatus.HELD if held else OutboundStatus.QUEUED, held, release)
        if held:
            log.warning("not sending %s to %s: %s", kind, address, held)
        queue_letter(
            session,
            {
                "case_id": case.id if case else None,
                "kind": kind,
                "message_id": message_id,
                "to_address": address,
                "subject": letter.subject,
                "raw": raw,
                "status": queued.status,
                "queued_at": release,
                "next_attempt_at": release,
                "last_error": held,
            },
        )
        if case is not None:
            assert case.id is not None
            if held:
                self._event(session, case, f"not sent {kind}", f"to {address}: {held}")
            else:
                later = f", to go at {release.isoformat()}" if release != now else ""
                self._event(session, case, f"queued {kind}", f"to {address}{later}")
                if address == case.customer_email:
                    db.note_in_thread(session, case.id, message_id, release, ours=True)
        return queued

    def automated_mail_held(self, session: Session, address: str) -> str:
        """Why an automated letter to ADDRESS would be held back now ("" if it would go)."""
        problem = cannot_address(address)
        if problem:
            return problem
        suppressed = bounce(session, address)
        return f"the address bounced ({suppressed.reason})" if suppressed else ""

    def _held_back(
        self,
        session: Session,
        case: Case | None,
        kind: MessageKind,
        letter: Letter,
        address: str,
        now: datetime,
    ) -> str:
        """Why LETTER must not go ("" if it may)."""
        if letter.auto_submitted is not None:
            held = self.automated_mail_held(session, address)
            return held or self._capped(session, kind, address, now)
        problem = cannot_address(address)
        if problem:  # the case stands, staff reach them otherwise
            return problem
        suppressed = bounce(session, address)
        if suppressed is not None:  # a person writing to the address lifts a bounce
            who = letter.author or letter.from_name or kind
            lift_bounce(session, suppressed, now, who)
            if case is not None:
                self._event(
                    session,
                    case,
                    "bounce suppression lifted",
                    f"{address} (it bounced: {suppressed.reason}): {who} wrote to it",
                    actor=who,
                )
        return ""

    def _capped(self, session: Session, kind: MessageKind, address: str, now: datetime) -> str:
        """Why an automated answer to ADDRESS goes over the day's cap ("" if it does not)."""
        if kind not in CAPPED:
            return ""
        cap = self.settings.limits.auto_replies_per_address_per_day
        # the letters queued earlier in this transaction are rows already (queue's INSERT)
        sent = automated_replies_since(session, address, now - DAY)
        if sent < cap:
            return ""
        self.alert(
            session,
            f"automated mail to {address} capped",
            f"{address} has had {sent} automated replies from mailbot in the last 24 hours "
            f"(limits.auto_replies_per_address_per_day = {cap}). Further ones are recorded "
            "but not sent until the day has passed. A mail loop or a flood is the usual cause.",
            once_per_day=True,
        )
        return f"{sent} automated replies in 24 hours, the cap is {cap}"

    def alert(self, session: Session, title: str, text: str, once_per_day: bool = False) -> None:
        """Mail the admins ([alerts] to), or log only if none are configured."""
        subject = f"mailbot: {title}"
        now = self.clock()
        if once_per_day and alerted_since(session, subject, now - DAY):
            return
        log.warning("alert: %s: %s", title, text)
        body = self.templates.render("admin_alert", {"title": title, "text": text})
        for admin in self.settings.alerts.to:
            letter = Letter(to_address=admin, to_name="", subject=subject, text=body)
            self.queue(session, None, MessageKind.ADMIN_ALERT, letter)

    def give_up(self, session: Session, now: datetime, refused: Sequence[int]) -> list[str]:
        """Mark failed the letters REFUSED just now whose first refusal is older than
        smtp.give_up_after, and return their kinds; the admins are told of each. Never a letter
        not tried: after an outage every waiting letter is put to the server again before any
        is given up."""
        stale = refused_before(session, refused, now - self.smtp.give_up_delta)
        for row in stale:
            row.status = OutboundStatus.FAILED
            row.last_error = f"gave up after {self.smtp.give_up_after}: {row.last_error}"
            session.add(row)
            log.error(
                "gave up %s %s to=%s: %s", row.kind, row.message_id, row.to_address, row.last_error
            )
            if row.kind != MessageKind.ADMIN_ALERT:
                self.alert(
                    session,
                    f"gave up sending {row.kind} to {row.to_address}",
                    f"Message {row.message_id} ({row.subject}) was queued at "
                    f"{row.queued_at.isoformat()}; the mail server first refused it at "
                    f"{_iso(row.first_refused_at)} and still refuses it after "
                    f"{self.smtp.give_up_after} ({row.attempts} attempts). Last answer: "
                    f"{row.last_error}",
                )
        session.commit()
        return [str(row.kind) for row in stale]

    def _event(
        self, session: Session, case: Case, action: str, detail: str, actor: str = "mailbot"
    ) -> None:
        assert case.id is not None
        db.record_event(session, case.id, self.clock(), actor, action, detail)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "?"


class Transport(Protocol):
    """The SMTP wire as the outbox drives it (transport.smtp.SmtpTransport)."""

    def envelope(self, sender: str, recipient: str) -> None: ...
    def content(self, raw: bytes) -> None: ...
    def answer(self) -> str: ...


@dataclass
class SendReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    held: int = 0  # the server cannot take the address (no SMTPUTF8): held back, not retried
    unreachable: bool = False  # the server could not be reached at all
    error: str = ""
    last_id: int = 0  # the last row tried
    refused: list[int] = field(default_factory=list)  # rows deferred by their own attempt
    # (kind, "sent" | "deferred" | "failed" | "held"): what the metrics count by kind
    letters: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, more: SendReport) -> None:
        """Count MORE in too; its outage (or its end) and its last row are the latest."""
        self.letters.update(more.letters)
        self.sent += more.sent
        self.deferred += more.deferred
        self.failed += more.failed
        self.held += more.held
        self.refused += more.refused
        self.unreachable, self.error, self.last_id = more.unreachable, more.error, more.last_id


def retry_delay(attempts: int) -> timedelta:
    """Capped exponential back-off: 1, 2, 4 ... minutes, at most an hour."""
    return capped_delay(attempts, FIRST_RETRY, LONGEST_RETRY)


def send_outbox(
    engine: Engine,
    connect: Callable[[], AbstractContextManager[Transport]],
    sender: str,
    now: datetime,
) -> SendReport:
    """Send every due row; each is claimed before its envelope goes, its answer committed
    after (class _Sending says how the letters overlap)."""
    report = SendReport()
    due = outbox_batch(engine, now)
    if not due:
        return report
    try:
        with connect() as transport, engine.connect() as one, engine.connect() as two:
            rows = due_letters(engine, now, due)
            _Sending(transport, (one, two), sender, now, report, rows).run()
    except (SmtpTemporaryError, SmtpPermanentError) as exc:
        # logged by the caller, once per outage; the rows wait in the outbox
        report.unreachable, report.error = True, f"{exc} ({len(due)} message(s) waiting)"
    return report


Rows = Iterator[tuple[int, str | None]]


@dataclass
class _Claimed:
    """A row claimed for sending: the claim is held on CONNECTION until its answer is
    committed there (on PostgreSQL a row lock, which another daemon's claim skips)."""

    connection: Connection
    row_id: int
    ref: str | None
    kind: str
    message_id: str
    to_address: str
    raw: bytes
    attempts: int
    first_refused_at: datetime | None


@dataclass
class _Sending:
    """One run through the due rows, one round trip a letter where the server pipelines.

    Letter N's content and final dot go in one write with letter N+1's envelope (MAIL, RCPT,
    DATA), and N's answer is committed while the server answers N+1's envelope. N+1 is
    claimed before its envelope is written, on the other connection: N's commit must not end
    N+1's claim. So after a crash at most one letter is in doubt, as when each letter went
    alone: when N's content goes, N-1's answer is committed, and N+1 has at most an
    envelope open, no content, which the server drops with the connection. Plain SQL, no
    ORM objects: this runs once per letter.
    """

    transport: Transport
    connections: tuple[Connection, Connection]
    sender: str
    now: datetime
    report: SendReport
    rows: Rows

    def run(self) -> None:
        """Raises SmtpConnectionLost if the link to the server died: the rest waits."""
        letter = self._open(None)
        while letter is not None:
            letter = self._send(letter)

    def _send(self, letter: _Claimed) -> _Claimed | None:
        """Read LETTER's envelope answers; once its DATA is answered 354, its content goes with
        the next letter's envelope, and its answer is recorded. Returns the next letter."""
        try:
            self.transport.answer()  # 354 to its DATA
        except (SmtpTemporaryError, SmtpPermanentError) as exc:
            self._record(letter, exc)
            return self._open(None)
        self.transport.content(letter.raw)
        following = self._open(letter.connection)
        answer: Answer
        try:
            answer = self.transport.answer()
        except (SmtpTemporaryError, SmtpPermanentError) as exc:
            answer = exc
        if isinstance(answer, SmtpConnectionLost) and following is not None:
            release_claim(following.connection)  # its envelope, never answered: not tried
        self._record(letter, answer)
        return following

    def _open(self, busy: Connection | None) -> _Claimed | None:
        """Claim the next due row on a connection other than BUSY (which holds the letter in
        hand's claim) and queue its envelope; None when no row is left."""
        one, two = self.connections
        connection = two if busy is one else one
        for row_id, ref in self.rows:
            self.report.last_id = row_id
            found = claim_letter(connection, row_id)
            if found is None:
                continue  # another daemon has it, or has sent it
            letter = _Claimed(connection, row_id, ref, *found)
            letter.attempts += 1  # counting this send
            try:
                self.transport.envelope(self.sender, letter.to_address)
            except (SmtpCannotAddress, SmtpConnectionLost) as exc:
                self._record(letter, exc)
                continue
            return letter
        return None

    def _record(self, letter: _Claimed, answer: Answer) -> None:
        """Record LETTER's ANSWER (the server's final reply, or what refused it) and commit,
        which ends its claim; a lost connection is raised after."""
        row_id, kind, report = letter.row_id, letter.kind, self.report
        change: dict[str, object] = {"attempts": letter.attempts}
        where = f"{kind} {letter.message_id} case={letter.ref}"
        if isinstance(answer, SmtpTemporaryError):
            change["last_error"] = str(answer)
            change["next_attempt_at"] = self.now + retry_delay(letter.attempts)
            # give_up_after counts from the first refusal
            change["first_refused_at"] = letter.first_refused_at or self.now
            report.deferred += 1
            report.refused.append(row_id)
            log.warning("deferred %s to=%s: %s", where, letter.to_address, answer)
        elif isinstance(answer, SmtpPermanentError):
            change["status"], change["last_error"] = OutboundStatus.FAILED, str(answer)
            report.failed += 1
            log.error("failed %s to=%s: %s", where, letter.to_address, answer)
        elif isinstance(answer, SmtpCannotAddress):  # (the case: Casefile.held_in_sending)
            change["status"], change["last_error"] = OutboundStatus.HELD, str(answer)
            report.held += 1
            log.warning("held back %s: %s", where, answer)
        else:
            change["status"], change["sent_at"] = OutboundStatus.SENT, self.now
            change["smtp_reply"] = answer
            report.sent += 1
            log.info("sent %s to=%s: %s", where, letter.to_address, answer)
        record_answer(letter.connection, row_id, change)
        report.letters[str(kind), str(change.get("status", "deferred"))] += 1
        if isinstance(answer, SmtpConnectionLost):
            raise answer
