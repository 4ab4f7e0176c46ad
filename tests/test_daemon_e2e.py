"""The daemon as admins run it: killed, stopped, cut off from IMAP, started twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlmodel import Session, create_engine, select

from mailbot.store.models import Disposition, Inbound, Outbound, OutboundStatus
from sandbox import Dovecot
from tests.conftest import PASSWORD, Mailbot, write_config
from tests.corpus import corpus_files
from tests.test_intake_e2e import complaint


def daemon(mailbot: Mailbot, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mailbot", "--config", str(mailbot.config), "run"]
    return subprocess.Popen(command, stderr=log.open("ab"), env=os.environ.copy())


def wait_until(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def rows(mailbot: Mailbot) -> tuple[list[Inbound], list[Outbound]]:
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        inbound = list(session.exec(select(Inbound)))
        outbound = list(session.exec(select(Outbound)))
    engine.dispose()
    return inbound, outbound


def settled(mailbot: Mailbot) -> bool:
    if mailbot.folder_count("INBOX"):
        return False
    inbound, outbound = rows(mailbot)
    return all(o.status != OutboundStatus.QUEUED for o in outbound) and all(
        i.disposition != Disposition.RECEIVED for i in inbound
    )


def test_killed_at_random_moments_loses_nothing_and_acknowledges_each_case_once(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    messages = [complaint(sender=f"Customer {n} <customer{n}@example.net>")[0] for n in range(250)]
    messages += [path.read_bytes() for path in corpus_files("mail-parser/tests/mails")]
    messages += [
        path.read_bytes() for path in corpus_files("flufl.bounce/flufl/bounce/tests/data")[:30]
    ]
    with mailbot.imap() as client:
        for raw in messages:
            client.append("INBOX", raw)
    log = tmp_path / "daemon.log"
    chance = random.Random(20261125)
    kills = 0
    while kills < 24:
        started = log.read_text().count("mailbot started") if log.exists() else 0
        process = daemon(mailbot, log)
        wait_until(
            lambda started=started: log.read_text().count("mailbot started") > started,
            30,
            "start-up",
        )
        # then it fetches, parses, commits, moves and sends: kill it somewhere in there
        time.sleep(chance.uniform(0.0, 0.8))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        kills += 1
    process = daemon(mailbot, log)
    wait_until(lambda: log.read_text().count("mailbot started") > kills, 30, "start-up")
    wait_until(lambda: settled(mailbot), 120, "the mailbox and outbox to drain")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0

    inbound, outbound = rows(mailbot)
    assert len(inbound) == len({(i.message_id, i.sha256) for i in inbound}), "stored once"
    assert {i.disposition for i in inbound} <= {
        Disposition.CASE,
        Disposition.IGNORED,
        Disposition.QUARANTINED,
    }
    assert all(i.reason for i in inbound if i.disposition != Disposition.CASE)
    assert mailbot.folder_count("INBOX") == 0
    assert mailbot.folder_count("mailbot/processed") + mailbot.folder_count(
        "mailbot/quarantine"
    ) == len(messages)

    acknowledgements = [o for o in outbound if o.kind == "acknowledgement"]
    cases = {i.case_id for i in inbound if i.kind == "complaint"}
    assert len(cases) >= 250 and {o.case_id for o in acknowledgements} == cases
    assert len(acknowledgements) == len(cases), "one acknowledgement queued per case"
    delivered: dict[str, list[str]] = defaultdict(list)
    for envelope in mailbot.smtp.received:
        if envelope.message["X-Mailbot-Kind"] == "acknowledgement":
            delivered[str(envelope.message["Subject"]).split("]")[0]].append(
                str(envelope.message["Message-ID"])
            )
    assert len(delivered) == len(cases)
    assert all(len(set(ids)) == 1 for ids in delivered.values()), "never a second acknowledgement"
    # the one window left: the server accepted, the process died before recording it
    redelivered = sum(len(ids) - 1 for ids in delivered.values())
    print(
        f"\n{kills} kills, {len(messages)} messages, "
        f"{len(cases)} cases: "
        f"{redelivered} acknowledgement(s) delivered twice (same Message-ID)"
    )
    assert redelivered <= 3


def test_sigterm_finishes_the_message_in_hand_and_exits_0(mailbot: Mailbot, tmp_path: Path) -> None:
    with mailbot.imap() as client:
        for n in range(40):
            client.append("INBOX", complaint(sender=f"C {n} <c{n}@example.net>")[0])
    process = daemon(mailbot, tmp_path / "daemon.log")
    wait_until(lambda: mailbot.folder_count("mailbot/processed") > 0, 30, "processing to start")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    inbound, _ = rows(mailbot)
    assert all(i.disposition != Disposition.RECEIVED for i in inbound), "none left half-done"
    text = (tmp_path / "daemon.log").read_text()
    assert "SIGTERM received" in text and "summary: fetched=" in text


@pytest.mark.sqlite_only  # on PostgreSQL several daemons share the work: see below
def test_a_second_daemon_on_the_same_database_refuses_to_start(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    first = daemon(mailbot, tmp_path / "first.log")
    try:
        wait_until(
            lambda: "mailbot started" in (tmp_path / "first.log").read_text(),
            30,
            "the first daemon",
        )
        second = subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(mailbot.config), "run"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 75
        assert "another mailbot is running on this database" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
    # a clean stop releases the lock at once
    once = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(mailbot.config), "run", "--once"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert once.returncode == 0, once.stderr


def test_imap_down_mid_run_is_logged_once_and_nothing_is_lost(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    own = Dovecot({mailbot.user: PASSWORD})
    own.start()
    try:
        write_config(
            mailbot.config,
            imap_port=own.port,
            user=mailbot.user,
            smtp_port=mailbot.smtp.port,
            db=mailbot.db_url,
        )
        mailbot.dovecot = own
        mailbot.append(complaint(sender="Before <before@example.net>")[0])
        log = tmp_path / "daemon.log"
        process = daemon(mailbot, log)
        wait_until(lambda: len(mailbot.customer_mail()) == 1, 30, "the first acknowledgement")
        own.stop()
        time.sleep(4)  # several polls and retries against a dead server
        own.start()
        mailbot.append(complaint(sender="After <after@example.net>")[0])
        wait_until(lambda: len(mailbot.customer_mail()) == 2, 60, "the second acknowledgement")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        own.cleanup()
    lines = log.read_text().splitlines()
    assert len([line for line in lines if "imap unreachable" in line]) == 1
    assert len([line for line in lines if "imap reachable again" in line]) == 1
    assert Counter(e.rcpt_tos[0] for e in mailbot.customer_mail()) == {
        "before@example.net": 1,
        "after@example.net": 1,
    }


@pytest.mark.postgresql_only
def test_two_daemons_on_postgresql_share_the_work_and_handle_nothing_twice(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    with mailbot.imap() as client:
        for n in range(150):
            client.append("INBOX", complaint(sender=f"Both {n} <both{n}@example.net>")[0])
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    daemons = [daemon(mailbot, log) for log in logs]
    try:
        wait_until(lambda: settled(mailbot), 120, "the mailbox and outbox to drain")
    finally:
        for process in daemons:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(timeout=30) for process in daemons] == [0, 0]
    inbound, outbound = rows(mailbot)
    assert len(inbound) == 150
    assert [i.reason for i in inbound if i.disposition != Disposition.CASE] == []
    acknowledgements = Counter(
        str(e.message["Subject"]).split("]")[0]
        for e in mailbot.smtp.received
        if e.message["X-Mailbot-Kind"] == "acknowledgement"
    )
    assert len(acknowledgements) == 150 and set(acknowledgements.values()) == {1}
    assert len({o.message_id for o in outbound}) == len(outbound)
    worked = [log.read_text().count("(new)") for log in logs]
    print(f"\ntwo daemons: messages processed {worked}")
    assert sum(worked) == 150
