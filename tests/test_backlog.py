"""A backlog drained in one cycle: every letter goes once, and a crash sends none twice."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, create_engine, select

from mailbot.store.models import Outbound, OutboundStatus
from tests.conftest import Mailbot
from tests.test_reading import complaint

NOW = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def outbound(db_url: str) -> list[Outbound]:
    engine = create_engine(db_url)
    with Session(engine) as session:
        rows = list(session.exec(select(Outbound).order_by(Outbound.id)))  # type: ignore[arg-type]
    engine.dispose()
    return rows


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
