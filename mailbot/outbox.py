"""Sending the outbox: each queued row once, retried with back-off, its answer recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from mailbot.config import SmtpSettings
from mailbot.mail.compose import Letter, compose, new_message_id
from mailbot.store import db
from mailbot.store.models import Case, Event, MessageKind, Outbound, OutboundStatus
from mailbot.transport.smtp import SmtpConnectionLost, SmtpPermanentError, SmtpTemporaryError

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)


class OutboxWriter:
    """Queues letters in the caller's transaction, their bytes and Message-ID fixed then."""

    def __init__(self, settings: SmtpSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.domain = settings.from_address.rpartition("@")[2]

    def queue(
        self, session: Session, case: Case | None, kind: MessageKind, letter: Letter
    ) -> Outbound:
        now = self.clock()
        message_id = new_message_id(self.domain)
        raw = compose(
            letter,
            from_address=self.settings.from_address,
            from_name=self.settings.from_name,
            message_id=message_id,
            date=now,
            kind=kind,
        )
        row = Outbound(
            case_id=case.id if case else None,
            kind=kind,
            message_id=message_id,
            to_address=letter.to_address,
            subject=letter.subject,
            raw=raw,
            queued_at=now,
            next_attempt_at=now,
        )
        session.add(row)
        if case is not None:
            assert case.id is not None
            detail = f"to {letter.to_address}"
            session.add(
                Event(
                    case_id=case.id, at=now, actor="mailbot", action=f"queued {kind}", detail=detail
                )
            )
        return row


class Transport(Protocol):
    def send(self, sender: str, recipient: str, raw: bytes) -> str: ...


@dataclass
class SendReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unreachable: bool = False  # the server could not be reached at all


def retry_delay(attempts: int) -> timedelta:
    """Capped exponential back-off: 1, 2, 4 ... minutes, at most an hour."""
    delay: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, LONGEST_RETRY)


def send_outbox(
    engine: Engine,
    connect: Callable[[], AbstractContextManager[Transport]],
    sender: str,
    now: datetime,
) -> SendReport:
    """Send every due row; each result is committed before the next row is tried."""
    report = SendReport()
    with Session(engine) as session:
        due = db.due_outbound(session, now)
        if not due:
            return report
        try:
            with connect() as transport:
                for row in due:
                    _send_one(session, transport, sender, row, now, report)
        except SmtpTemporaryError as exc:
            report.unreachable = True
            log.warning("smtp unreachable, %d message(s) wait in the outbox: %s", len(due), exc)
        except SmtpPermanentError as exc:
            report.unreachable = True
            log.error("smtp refused us, %d message(s) wait in the outbox: %s", len(due), exc)
    return report


def _send_one(
    session: Session,
    transport: Transport,
    sender: str,
    row: Outbound,
    now: datetime,
    report: SendReport,
) -> None:
    row.attempts += 1
    ref = _ref(session, row)
    try:
        row.smtp_reply = transport.send(sender, row.to_address, row.raw)
    except SmtpTemporaryError as exc:
        row.last_error = str(exc)
        row.next_attempt_at = now + retry_delay(row.attempts)
        report.deferred += 1
        log.warning(
            "deferred %s %s case=%s to=%s: %s", row.kind, row.message_id, ref, row.to_address, exc
        )
        if isinstance(exc, SmtpConnectionLost):
            session.add(row)
            session.commit()
            raise
    except SmtpPermanentError as exc:
        row.status, row.last_error = OutboundStatus.FAILED, str(exc)
        report.failed += 1
        log.error(
            "failed %s %s case=%s to=%s: %s", row.kind, row.message_id, ref, row.to_address, exc
        )
    else:
        row.status, row.sent_at = OutboundStatus.SENT, now
        report.sent += 1
        log.info(
            "sent %s %s case=%s to=%s: %s",
            row.kind,
            row.message_id,
            ref,
            row.to_address,
            row.smtp_reply,
        )
    session.add(row)
    session.commit()


def _ref(session: Session, row: Outbound) -> str | None:
    case = session.get(Case, row.case_id) if row.case_id else None
    return case.ref if case else None
