"""The reading helper: the same readings as the main process, and never an orphan."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path

import pytest

from mailbot.mail.bounce import read_bounce
from mailbot.mail.classify import Sender
from mailbot.reading import Reader, Readers, read
from tests.conftest import TEAM_LEADER, Mailbot
from tests.corpus import corpus_files

READER = Reader(frozenset({"complaints@provider.example"}), ("speak to your boss",))


def corpus_mail() -> list[bytes]:
    mails = [p.read_bytes() for p in corpus_files("mail-parser/tests/mails")]
    bounces = [p.read_bytes() for p in corpus_files("flufl.bounce/flufl/bounce/tests/data")]
    return mails + bounces[:20]


def test_the_helper_reads_every_message_as_the_main_process_does() -> None:
    raws = corpus_mail()
    readers = Readers(READER, max_bytes=10_000_000)
    try:
        readings = readers.result(readers.submit(raws), len(raws))
    finally:
        readers.close()
    assert len(readings) == len(raws)
    kinds = set()
    for raw, reading in zip(raws, readings, strict=True):
        assert reading is not None
        here = read(raw, READER)
        assert reading.parsed == here.parsed
        assert reading.verdict == here.verdict
        assert reading.bounce == here.bounce
        assert reading.new_text == here.new_text
        text, sender = here.parsed.text, here.parsed.sender
        assert reading.deadlock_words(text) == here.deadlock_words(text)
        if sender is not None:
            assert reading.details(sender.name, text) == here.details(sender.name, text)
        kinds.add(reading.verdict.sender)
    assert {Sender.PERSON, Sender.BOUNCE} <= kinds


def test_a_bounce_read_from_mail_parsers_tree_reads_as_from_its_bytes() -> None:
    bounces = [p.read_bytes() for p in corpus_files("flufl.bounce/flufl/bounce/tests/data")]
    read_as_bounces = 0
    for raw in bounces:
        reading = read(raw, READER)
        if reading.bounce is not None:
            read_as_bounces += 1
            assert reading.bounce == read_bounce(raw)
    assert read_as_bounces >= 100


def test_messages_over_the_size_limit_are_left_to_the_main_process() -> None:
    small, large = (
        b"From: a@example.net\r\n\r\nhello\r\n",
        b"From: b@example.net\r\n\r\n" + b"x" * 500,
    )
    readers = Readers(READER, max_bytes=100)
    try:
        first, second = readers.result(readers.submit([small, large]), 2)
    finally:
        readers.close()
    assert first is not None and first.parsed.text == "hello"
    assert second is None


def test_a_helper_that_dies_mid_batch_leaves_the_batch_to_the_main_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raws = corpus_mail() * 10  # seconds of reading: the kill lands mid-batch
    readers = Readers(READER, max_bytes=10_000_000)
    try:
        future = readers.submit(raws)  # returns once the helper has the whole batch
        helper = readers._helper
        assert helper is not None
        helper.kill()
        assert readers.result(future, len(raws)) == [None] * len(raws)
        assert "reading helper stopped" in caplog.text
        again = readers.result(readers.submit(raws[:3]), 3)  # a new helper for the next batch
        assert all(reading is not None for reading in again)
        assert readers._helper is not None and readers._helper.pid != helper.pid
    finally:
        readers.close()


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # a zombie nobody reaped has ended all the same


def test_the_helper_ends_when_the_daemon_is_killed() -> None:
    script = (
        "import os, signal\n"
        "from mailbot.reading import Reader, Readers\n"
        "readers = Readers(Reader(frozenset(), ()), 10_000_000)\n"
        "readers.result(readers.submit([b'From: a@example.net\\r\\n\\r\\nhi\\r\\n']), 1)\n"
        "print(readers._helper.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    daemon = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert daemon.returncode == -9
    helper_pid = int(daemon.stdout)
    deadline = time.monotonic() + 10
    while not gone(helper_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(helper_pid)


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


def test_a_backlog_in_several_batches_is_read_ahead_and_threaded_as_one(
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

    assert "reading ahead in a helper process" in caplog.text
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
