"""Outages: each server backs off on its own, so one being down never stops the other's work."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from mailbot.app import App, build_app, wall_clock
from mailbot.backoff import Backoff, capped_delay
from mailbot.config import load_settings
from mailbot.daemon import Outage, Outages, run_forever
from mailbot.store.lock import DatabaseLock
from mailbot.store.models import MessageKind, OutboundStatus
from sandbox import Dovecot, free_port, sandbox_config
from tests.conftest import PASSWORD, Mailbot
from tests.test_daemon_e2e import rows, wait_until
from tests.test_intake_e2e import complaint

RECEIVED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday morning


# The back-off itself: pure, on a clock passed in


def test_each_failure_doubles_the_delay_up_to_the_cap() -> None:
    delays = [capped_delay(n, 1.0, 300.0) for n in range(1, 12)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert capped_delay(3, timedelta(minutes=1), timedelta(hours=1)) == timedelta(minutes=4)


def test_jitter_waits_between_half_and_all_of_each_delay() -> None:
    backoff = Backoff(first=1.0, longest=300.0, jitter=random.Random(20261123))
    for failures in range(1, 40):
        now = 1000.0 * failures
        delay = backoff.failed(now)
        full = capped_delay(failures, 1.0, 300.0)
        assert full / 2 <= delay <= full
        assert backoff.retry_at == now + delay
        assert not backoff.ready(now + delay / 2)
        assert backoff.ready(now + delay)


def test_a_success_starts_the_back_off_again_from_the_first_delay() -> None:
    backoff = Backoff(first=1.0, longest=300.0)
    for n in range(6):
        backoff.failed(float(n))
    assert not backoff.ready(5.0)
    assert backoff.succeeded() == 6
    assert backoff.ready(5.0)
    assert backoff.failed(5.0) <= 1.0
    assert backoff.succeeded() == 1 and backoff.succeeded() == 0


def test_smtp_down_holds_back_neither_the_mailbox_nor_imap_down_the_outbox(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mailbot")
    outages = Outages()
    outages.smtp.failed("connection refused")
    outages.smtp.failed("connection refused")
    assert outages.imap.may_try() and not outages.smtp.may_try()
    outages.imap.reached()  # the mailbox answering says nothing of the SMTP server
    assert outages.smtp.down and not outages.smtp.may_try()
    outages.imap.failed("connection refused")
    outages.smtp.reached()
    assert not outages.imap.may_try() and outages.smtp.may_try()
    assert [r.getMessage() for r in caplog.records] == [
        "smtp unreachable, retrying with back-off: connection refused",
        "imap unreachable, retrying with back-off: connection refused",
        "smtp reachable again after 2 failed attempt(s)",
    ]


# The daemon, with one server down: a back-off of an hour is not waited out in these tests


def an_hour() -> Backoff:
    return Backoff(first=3600.0, longest=3600.0)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def configure(
    mailbot: Mailbot,
    *,
    imap_port: int | None = None,
    poll_seconds: int = 1,
    idle: bool = True,
    tick_seconds: int = 600,
) -> None:
    text = sandbox_config(
        imap_port=mailbot.dovecot.port if imap_port is None else imap_port,
        user=mailbot.user,
        password=PASSWORD,
        smtp_port=mailbot.smtp.port,
        database_url=mailbot.db_url,
        poll_seconds=poll_seconds,
    )
    text = text.replace("[smtp]", f"idle = {str(idle).lower()}\n\n[smtp]")
    text += f'\n[procedure]\ntick_seconds = {tick_seconds}\n\n[alerts]\nto = ["{ADMIN}"]\n'
    mailbot.config.write_text(text)


ADMIN = "admin@provider.example"


@contextmanager
def daemon_thread(mailbot: Mailbot, outages: Outages, clock: Clock | None = None) -> Iterator[App]:
    """`mailbot run` in a thread of its own, stopped by its Event."""
    app = build_app(load_settings(mailbot.config, {}), clock or wall_clock)
    lock = DatabaseLock(app.engine)
    lock.acquire()
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(app, lock, stop, outages))
    thread.start()
    try:
        yield app
    finally:
        stop.set()
        thread.join(timeout=30)
        lock.release()
        app.close()
    assert not thread.is_alive()


def queued(mailbot: Mailbot, kind: MessageKind) -> set[str]:
    """Who the outbox holds letters of KIND for, not sent yet."""
    _, outbound = rows(mailbot)
    return {o.to_address for o in outbound if o.kind == kind and o.status == OutboundStatus.QUEUED}


def test_with_smtp_down_complaints_are_still_fetched_acknowledged_and_the_timers_run(
    mailbot: Mailbot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailbot")
    configure(mailbot, idle=False, tick_seconds=1)
    mailbot.smtp.stop()
    mailbot.append(complaint(sender="First <first@example.net>")[0], when=RECEIVED)
    clock = Clock(RECEIVED + timedelta(minutes=1))
    with daemon_thread(mailbot, Outages(smtp=Outage("smtp", an_hour())), clock):
        wait_until(lambda: "smtp unreachable" in caplog.text, 30, "the SMTP server found down")
        mailbot.append(complaint(sender="Second <second@example.net>")[0], when=RECEIVED)
        both = {"first@example.net", "second@example.net"}
        wait_until(
            lambda: queued(mailbot, MessageKind.ACKNOWLEDGEMENT) == both,
            30,
            "the second complaint fetched, its case opened and its acknowledgement queued",
        )
        assert mailbot.folder_count("INBOX") == 0
        clock.now = RECEIVED + timedelta(weeks=8, minutes=1)
        wait_until(
            lambda: queued(mailbot, MessageKind.ADR_NOTICE) == both,
            30,
            "the tick to queue the 8-week ADR notices",
        )
    assert caplog.text.count("smtp unreachable") == 1
    assert mailbot.smtp.received == []


def test_with_smtp_down_mail_announced_over_idle_is_fetched_at_once(
    mailbot: Mailbot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailbot")
    configure(mailbot, poll_seconds=600)
    mailbot.smtp.stop()
    mailbot.append(complaint(sender="First <first@example.net>")[0])
    with daemon_thread(mailbot, Outages(smtp=Outage("smtp", an_hour()))):
        wait_until(
            lambda: "smtp unreachable" in caplog.text and "waiting in IMAP IDLE" in caplog.text,
            30,
            "the SMTP server found down, and IDLE",
        )
        mailbot.append(complaint(sender="Second <second@example.net>")[0])
        wait_until(
            lambda: "second@example.net" in queued(mailbot, MessageKind.ACKNOWLEDGEMENT),
            30,  # a functional bound, far below the 600 s poll
            "the complaint IDLE announced to be acknowledged",
        )


def test_with_imap_unreachable_the_outbox_is_still_sent(
    mailbot: Mailbot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailbot")
    configure(mailbot, imap_port=free_port())  # nothing listens there
    with daemon_thread(mailbot, Outages(imap=Outage("imap", an_hour()))) as app:
        wait_until(lambda: "imap unreachable" in caplog.text, 30, "the IMAP server found down")
        with Session(app.engine) as session:
            app.outbox.alert(session, "a test", "Queued while IMAP is down.")
            session.commit()
        wait_until(lambda: len(mailbot.smtp.received) == 1, 30, "the queued letter to be sent")
    assert mailbot.smtp.received[0].rcpt_tos == [ADMIN]
    assert caplog.text.count("imap unreachable") == 1


def test_when_idle_is_back_the_mailbox_is_read_without_waiting_out_the_back_off(
    mailbot: Mailbot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailbot")
    own = Dovecot({mailbot.user: PASSWORD})  # not started yet: the mailbox is down
    try:
        configure(mailbot, imap_port=own.port, poll_seconds=600)
        mailbot.dovecot = own
        with daemon_thread(mailbot, Outages(imap=Outage("imap", an_hour()))):
            wait_until(lambda: "imap unreachable" in caplog.text, 30, "the IMAP server found down")
            own.start()
            mailbot.append(complaint(sender="Back <back@example.net>")[0])
            wait_until(lambda: len(mailbot.customer_mail()) == 1, 30, "the acknowledgement")
    finally:
        own.cleanup()
    assert caplog.text.count("imap reachable again") == 1
