"""A backlog drained in one cycle: every letter goes once, and a crash sends none twice."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlmodel import Session, create_engine, select

from mailbot.store.models import Outbound, OutboundStatus
from sandbox import HANG_UP, Envelope
from tests.conftest import TEAM_LEADER, Mailbot

NOW = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def outbound(db_url: str) -> list[Outbound]:
    engine = create_engine(db_url)
    with Session(engine) as session:
        rows = list(session.exec(select(Outbound).order_by(Outbound.id)))  # type: ignore[arg-type]
    engine.dispose()
    return rows


def complaint(n: int, extra: str = "", subject: str = "") -> tuple[bytes, str]:
    message_id = make_msgid(domain="example.net")
    raw = (
        f"From: Customer {n} <customer{n}@example.net>\r\nTo: complaints@provider.example\r\n"
        f"Subject: {subject or f'Broadband down, number {n}'}\r\nMessage-ID: {message_id}\r\n"
        f"{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"My broadband on account 1234567{n} drops every evening. Please call me on"
        f" 07700 900{n:03d}.\r\n\r\nRegards,\r\nCustomer {n}\r\n"
    )
    return raw.encode(), message_id


def test_a_backlog_in_several_batches_is_threaded_as_one(
    mailbot: Mailbot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MAILBOT_MAILBOX_BATCH_SIZE", "2")
    first, first_id = complaint(0)
    mailbot.append(first, datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    for n in range(1, 6):
        mailbot.append(complaint(n)[0], datetime(2026, 11, 20, 10, n, tzinfo=UTC))
    # a reply to the first complaint, three batches later: the same case
    reply, reply_id = complaint(0, extra=f"In-Reply-To: {first_id}\r\n", subject="Re: still down")
    mailbot.append(reply, datetime(2026, 11, 20, 11, 0, tzinfo=UTC))

    assert mailbot("--now", "2026-11-20T11:30:00+00:00", "run", "--once") == 0

    assert mailbot.folder_count("INBOX") == 0
    assert mailbot.folder_count("mailbot/processed") == 7
    acknowledged = sorted(e.rcpt_tos[0] for e in mailbot.customer_mail())
    assert acknowledged == [f"customer{n}@example.net" for n in range(6)]  # one each, no more
    lines = {m.split("message_id=")[1].split()[0]: m for m in caplog.messages if "message_id=" in m}
    first_case = lines[first_id].split("case=")[1].split()[0]
    assert f"case={first_case} " in lines[reply_id]
    assert "kind=customer_reply" in lines[reply_id]


def test_a_reply_in_the_same_batch_as_its_complaint_threads_the_staff_copy(
    mailbot: Mailbot,
) -> None:
    """The thread headers come from a per-transaction cache: it must see the whole batch."""
    first, first_id = complaint(1)
    reply, reply_id = complaint(1, extra=f"In-Reply-To: {first_id}\r\n", subject="Re: still down")
    mailbot.append(first, datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    mailbot.append(reply, datetime(2026, 11, 20, 10, 5, tzinfo=UTC))
    assert mailbot("--now", "2026-11-20T10:30:00+00:00", "run", "--once") == 0

    [ack] = mailbot.customer_mail()
    ack_id = str(ack.message["Message-ID"])
    notes = mailbot.staff_mail(TEAM_LEADER)
    assert len(notes) == 2
    about_reply = notes[1].message
    assert about_reply["In-Reply-To"] == reply_id
    assert str(about_reply["References"]).split() == [first_id, reply_id, ack_id]


def test_a_drained_backlog_sends_each_letter_once_in_the_same_cycle(
    mailbot: Mailbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_MAILBOX_BATCH_SIZE", "2")
    for n in range(6):
        mailbot.append(complaint(n)[0], NOW)

    assert mailbot("--now", "2026-11-20T11:30:00+00:00", "run", "--once") == 0

    rows = outbound(mailbot.db_url)
    assert len(rows) == 12  # an acknowledgement and a staff copy each
    assert {row.status for row in rows} == {OutboundStatus.SENT}
    delivered = Counter(str(e.message["Message-ID"]) for e in mailbot.smtp.received)
    assert sorted(delivered) == sorted(row.message_id for row in rows)
    assert set(delivered.values()) == {1}
    if mailbot.db_url.startswith("sqlite"):  # one database: no second file to back up
        database = Path(mailbot.db_url.removeprefix("sqlite:///"))
        assert not Path(f"{database}-sent").exists()


def test_killed_mid_drain_loses_nothing_and_sends_no_answered_letter_again(
    mailbot: Mailbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_MAILBOX_BATCH_SIZE", "1")
    for n in range(3):
        mailbot.append(complaint(n)[0], NOW)
    command = [sys.executable, "-m", "mailbot", "--config", str(mailbot.config), "run", "--once"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=os.environ.copy())
    dots = itertools.count(1)

    def kill_at_the_third(stage: str, letter: Envelope) -> str | None:
        """At the third letter's final dot, unanswered: the first two were answered 250 and
        recorded (the second's answer is committed while the server reads the third's
        envelope, and before the third's content is written)."""
        if stage == "DOT" and next(dots) == 3:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return HANG_UP  # the third never answered: not taken
        return None

    mailbot.smtp.handler.answer = kill_at_the_third
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert len(mailbot.smtp.received) == 2
    mailbot.smtp.handler.answer = None

    assert mailbot("run", "--once") == 0  # the wall clock, as the run killed

    rows = outbound(mailbot.db_url)
    assert len(rows) == 6 and {row.status for row in rows} == {OutboundStatus.SENT}
    delivered = Counter(str(e.message["Message-ID"]) for e in mailbot.smtp.received)
    assert sorted(delivered) == sorted(row.message_id for row in rows)
    assert set(delivered.values()) == {1}, "a letter the server had answered went again"


def test_a_long_backlog_sends_its_first_acknowledgements_before_it_is_all_read(
    mailbot: Mailbot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A backlog is read in rounds of app.ROUND_BATCHES batches, the outbox sent after each:
    the first customers hear from us while the rest is still in the mailbox."""
    monkeypatch.setenv("MAILBOT_MAILBOX_BATCH_SIZE", "1")
    for n in range(12):  # one round of ten messages, then the last two
        mailbot.append(complaint(n)[0], NOW)

    with caplog.at_level("INFO"):
        assert mailbot("--now", "2026-11-20T11:30:00+00:00", "run", "--once") == 0

    lines = [r.getMessage() for r in caplog.records]
    first_sent = next(i for i, line in enumerate(lines) if line.startswith("sent acknowledgement"))
    eleventh = next(i for i, line in enumerate(lines) if line.startswith("uid=11 "))
    assert first_sent < eleventh, "the first round's letters went before the eleventh was read"
    assert len(outbound(mailbot.db_url)) == 24
    assert {row.status for row in outbound(mailbot.db_url)} == {OutboundStatus.SENT}
