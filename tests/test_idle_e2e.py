"""IMAP IDLE: new mail is handled when it arrives, not at the next poll."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Mailbot
from tests.test_intake_e2e import complaint


def test_mail_arriving_during_idle_is_acknowledged_long_before_the_next_poll(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    config = mailbot.config.read_text().replace("poll_seconds = 1", "poll_seconds = 600")
    mailbot.config.write_text(config)
    log = tmp_path / "daemon.log"
    command = [sys.executable, "-m", "mailbot", "-v", "--config", str(mailbot.config), "run"]
    process = subprocess.Popen(command, stderr=log.open("wb"), env=os.environ.copy())
    try:
        deadline = time.monotonic() + 30
        while "waiting in IMAP IDLE" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        for n in range(3):  # several arrivals, each while idling
            mailbot.append(complaint(sender=f"Idle {n} <idle{n}@example.net>")[0])
            deadline = time.monotonic() + 30  # a functional bound, far below the 600 s poll
            while len(mailbot.customer_mail()) < n + 1:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert [e.rcpt_tos for e in mailbot.customer_mail()] == [
        ["idle0@example.net"],
        ["idle1@example.net"],
        ["idle2@example.net"],
    ]
