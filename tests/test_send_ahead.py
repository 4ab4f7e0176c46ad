"""Sending while a backlog drains: the letters go at once, and none goes twice."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, create_engine, select

from mailbot.app import build_app
from mailbot.config import load_settings
from mailbot.sandbox import Dovecot, SmtpSink
from mailbot.store.models import MessageKind, Outbound, OutboundStatus
from tests.conftest import Mailbot, write_config
from tests.test_reading import complaint

NOW = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def outbound(db_url: str) -> list[Outbound]:
    engine = create_engine(db_url)
    with Session(engine) as session:
        rows = list(session.exec(select(Outbound).order_by(Outbound.id)))  # type: ignore[arg-type]
    engine.dispose()
    return rows


def journal_entries(db_url: str) -> int:
    path = Path(db_url.removeprefix("sqlite:///") + "-sent")
    with sqlite3.connect(path) as journal:
        return int(journal.execute("SELECT count(*) FROM sent").fetchone()[0])


def test_a_backlog_sends_its_letters_while_it_drains(
    mailbot: Mailbot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MAILBOT_MAILBOX_BATCH_SIZE", "2")
    for n in range(6):
        mailbot.append(complaint(n)[0], NOW)

    assert mailbot("--now", "2026-11-20T11:30:00+00:00", "run", "--once") == 0

    rows = outbound(mailbot.db_url)
    assert len(rows) == 12  # an acknowledgement and a staff copy each
    assert {row.status for row in rows} == {OutboundStatus.SENT}
    assert f"backlog: {len(rows)} letter(s) sent while it drained" in caplog.text
    delivered = Counter(str(e.message["Message-ID"]) for e in mailbot.smtp.received)
    assert sorted(delivered) == sorted(row.message_id for row in rows)
    assert set(delivered.values()) == {1}
    if mailbot.db_url.startswith("sqlite"):
        assert journal_entries(mailbot.db_url) == 0  # folded into the outbox


def test_killed_while_sending_ahead_sends_no_answered_letter_again(
    mailbot: Mailbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_MAILBOX_BATCH_SIZE", "1")
    for n in range(3):
        mailbot.append(complaint(n)[0], NOW)
    command = [sys.executable, "-m", "mailbot", "--config", str(mailbot.config), "run", "--once"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=os.environ.copy())
    mails = itertools.count(1)

    def kill_at_the_third() -> None:  # the first two letters were answered 250 and recorded
        if next(mails) == 3:
            process.send_signal(signal.SIGKILL)

    mailbot.smtp.handler.on_mail = kill_at_the_third
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert len(mailbot.smtp.received) == 2
    mailbot.smtp.handler.on_mail = None

    assert mailbot("run", "--once") == 0  # the wall clock, as the run killed

    rows = outbound(mailbot.db_url)
    assert len(rows) == 6 and {row.status for row in rows} == {OutboundStatus.SENT}
    delivered = Counter(str(e.message["Message-ID"]) for e in mailbot.smtp.received)
    assert sorted(delivered) == sorted(row.message_id for row in rows)
    assert set(delivered.values()) == {1}, "a letter the server had answered went again"


def test_an_answer_in_the_send_journal_is_folded_in_and_not_sent(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """As after a crash between the journal's commit and the fold: the letter is not sent."""
    config = tmp_path / "config.toml"
    write_config(
        config,
        imap_port=dovecot.port,
        user="journal",
        smtp_port=smtp_sink.port,
        db=tmp_path / "m.db",
    )
    app = build_app(load_settings(config, environ={}), clock=lambda: NOW)
    try:
        raw, _ = complaint(1)
        assert app.intake.receive(raw, NOW, "test").new_case
        [ack, staff_copy] = outbound(app.settings.database.url)
        assert ack.kind == MessageKind.ACKNOWLEDGEMENT and ack.id is not None
        answer = {"status": OutboundStatus.SENT, "sent_at": NOW, "smtp_reply": "250 earlier"}
        assert app.journal is not None
        app.journal.record(ack.id, {**answer, "attempts": 1})

        report = app.send()

        assert "send journal: 1 answer(s) folded into the outbox" in caplog.messages
        assert report.sent == 1
        assert [str(e.message["Message-ID"]) for e in smtp_sink.received] == [staff_copy.message_id]
        ack_now = outbound(app.settings.database.url)[0]
        assert (ack_now.status, ack_now.smtp_reply, ack_now.attempts) == (
            OutboundStatus.SENT,
            "250 earlier",
            1,
        )
        assert ack_now.sent_at is not None and ack_now.sent_at.replace(tzinfo=UTC) == NOW
        # folded twice (a crash between the outbox's commit and the journal's): no change
        app.journal.record(ack.id, {**answer, "attempts": 1})
        assert app.send().sent == 0
        assert len(smtp_sink.received) == 1
        assert outbound(app.settings.database.url)[0].smtp_reply == "250 earlier"
        assert journal_entries(app.settings.database.url) == 0
    finally:
        app.close()


def test_answers_of_every_kind_fold_into_their_rows(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    config = tmp_path / "config.toml"
    write_config(
        config, imap_port=dovecot.port, user="kinds", smtp_port=smtp_sink.port, db=tmp_path / "m.db"
    )
    app = build_app(load_settings(config, environ={}), clock=lambda: NOW)
    try:
        assert app.intake.receive(complaint(2)[0], NOW, "test").new_case
        [ack, staff_copy] = outbound(app.settings.database.url)
        assert app.journal is not None and ack.id is not None and staff_copy.id is not None
        later = NOW + timedelta(minutes=1)
        deferral = {"attempts": 1, "last_error": "451 try later", "next_attempt_at": later}
        app.journal.record(ack.id, deferral | {"first_refused_at": NOW})
        app.journal.record(
            staff_copy.id,
            {"attempts": 1, "status": OutboundStatus.FAILED, "last_error": "550 no such user"},
        )

        assert app.journal.fold(app.engine) == 2

        ack_now, staff_now = outbound(app.settings.database.url)
        assert (ack_now.status, ack_now.attempts, ack_now.last_error) == (
            OutboundStatus.QUEUED,
            1,
            "451 try later",
        )
        assert ack_now.next_attempt_at.replace(tzinfo=UTC) == later
        assert ack_now.first_refused_at == NOW, "give_up_after counts from the first refusal"
        assert (staff_now.status, staff_now.attempts, staff_now.last_error) == (
            OutboundStatus.FAILED,
            1,
            "550 no such user",
        )
        assert app.send().sent == 0 and smtp_sink.received == []  # the ack is not due yet
    finally:
        app.close()
