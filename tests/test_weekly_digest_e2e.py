"""[reports] weekly_digest: each week's figures to the managers once, at the week's opening."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest

from mailbot.app import build_app
from mailbot.config import load_settings
from sandbox import Envelope
from tests.conftest import MANAGER, STAFF, Mailbot
from tests.test_intake_e2e import complaint
from tests.test_procedure_e2e import ingest


def run_once(mailbot: Mailbot, now: datetime) -> None:
    assert mailbot("--now", now.isoformat(), "run", "--once") == 0


def digests(mailbot: Mailbot) -> list[Envelope]:
    return [e for e in mailbot.smtp.received if e.message["X-Mailbot-Kind"] == "weekly_digest"]


def body(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


def with_digest(mailbot: Mailbot) -> None:
    mailbot.config.write_text(mailbot.config.read_text() + "\n[reports]\nweekly_digest = true\n")


def test_the_managers_get_last_week_s_figures_once_at_monday_s_opening(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    raw, _ = complaint()
    ingest(mailbot, tmp_path, raw, datetime(2026, 11, 24, 10, 0, tzinfo=UTC))  # a Tuesday
    run_once(mailbot, datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    assert digests(mailbot) == []  # off unless [reports] weekly_digest = true
    with_digest(mailbot)
    run_once(mailbot, datetime(2026, 11, 30, 8, 59, tzinfo=UTC))
    assert digests(mailbot) == []  # not before opening time
    run_once(mailbot, datetime(2026, 11, 30, 9, 30, tzinfo=UTC))
    run_once(mailbot, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))  # a restart: not again
    run_once(mailbot, datetime(2026, 12, 4, 12, 0, tzinfo=UTC))

    [digest] = digests(mailbot)
    assert digest.rcpt_tos == [MANAGER]  # the managers only (one is configured)
    mail = digest.message
    assert mail["Subject"] == "Complaints: the week of 23 November 2026 to 29 November 2026"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail["X-Mailbot-Loop"] == "complaints@provider.example"
    parts = list(mail.walk())
    assert [p.get_content_type() for p in parts] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",  # the HTML with its chart inline: mail clients do not show SVG
        "text/html",
        "image/png",
    ]
    _, plain, _, page, chart = parts
    assert body(chart)[:8] == b"\x89PNG\r\n\x1a\n"
    assert f'src="cid:{chart["Content-ID"][1:-1]}"' in body(page).decode()
    text = body(plain).decode()
    assert re.search(r"\n  Complaints received +1\r\n", text)
    assert re.search(r"\n  First response late +1\r\n", text)  # nobody answered Alice
    assert "Cases that need attention now: 1" in text


def test_weeks_missed_are_not_sent_late_and_a_bank_holiday_monday_waits_for_tuesday(
    mailbot: Mailbot,
) -> None:
    with_digest(mailbot)
    # the daemon was down for three weeks: only the latest week's digest goes
    run_once(mailbot, datetime(2026, 12, 23, 10, 0, tzinfo=UTC))
    assert [e.message["Subject"] for e in digests(mailbot)] == [
        "Complaints: the week of 14 December 2026 to 20 December 2026"
    ]
    # Monday 28 December 2026 is Boxing Day (substitute day): the week opens on Tuesday
    run_once(mailbot, datetime(2026, 12, 28, 10, 0, tzinfo=UTC))
    assert len(digests(mailbot)) == 1
    run_once(mailbot, datetime(2026, 12, 29, 9, 0, tzinfo=UTC))
    assert len(digests(mailbot)) == 2
    assert not [e for e in mailbot.smtp.received if not set(e.rcpt_tos) <= STAFF]


@pytest.mark.postgresql_only
def test_two_daemons_at_the_same_moment_send_one_digest(mailbot: Mailbot) -> None:
    with_digest(mailbot)
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    apps = [build_app(load_settings(mailbot.config), lambda: monday) for _ in range(2)]
    queued: list[int] = []
    start = threading.Barrier(2)

    def daemon(index: int) -> None:
        start.wait()
        queued.append(apps[index].weekly_digest())

    threads = [threading.Thread(target=daemon, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(queued) == [0, 1]
    for app in apps:
        app.send()
        app.close()
    assert len(digests(mailbot)) == 1
