"""Proof of delivery (issue 28): each letter's SHA-256 as given to SMTP, a bounce naming our
deadlock letter marks it undelivered, the managers are told once, `#sent-by-post` records it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from sandbox import Envelope
from tests.conftest import MANAGER, Mailbot
from tests.test_defences_e2e import bounce_for
from tests.test_endings_e2e import POSITION, kind, staff
from tests.test_intake_e2e import complaint, show
from tests.test_procedure_e2e import ingest

ALICE = "alice@example.net"
RECEIVED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ISSUED = RECEIVED + timedelta(hours=5)
BOUNCED = RECEIVED + timedelta(days=1)


def dsn_with_headers(letter: Envelope) -> bytes:
    """An RFC 3464 report quoting the original's headers (its Message-ID)."""
    return bounce_for(str(letter.message["Message-ID"]), ALICE)


def prose_quoting_the_body(letter: Envelope) -> bytes:
    """A bounce in prose that quotes the letter's words only: no header, no Message-ID."""
    words = "\r\n".join(f"> {line}" for line in text_of(letter.message).splitlines()[:6])
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: complaints@provider.example\r\n"
        f"Subject: Mail delivery failed\r\nMessage-ID: {make_msgid(domain='mx.example.net')}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {ALICE}\r\n    host mx.example.net said: 550 5.1.1 User unknown\r\n\r\n"
        f"------ This is a copy of the body of the message.\r\n\r\n{words}\r\n"
    ).encode()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    text: str = body.get_content()
    return text


def figures(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    args = ("report", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json")
    assert mailbot("--now", "2026-12-01T09:00:00+00:00", *args) == 0
    found: dict[str, Any] = json.loads(capsys.readouterr().out)
    return found


@pytest.mark.parametrize("bounce", [dsn_with_headers, prose_quoting_the_body])
def test_a_bounced_deadlock_letter_is_undelivered_the_managers_told_once_and_posted(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str], bounce: Any
) -> None:
    ingest(mailbot, tmp_path, complaint()[0], RECEIVED)
    ref = _ref(mailbot, capsys)
    staff(mailbot, tmp_path, ref, f"#deadlock {POSITION}", ISSUED)
    [letter] = [e for e in mailbot.customer_mail() if kind(e) == "deadlock_letter"]
    case = show(mailbot, ref, capsys)
    [row] = [m for m in case["outbound"] if m["kind"] == "deadlock_letter"]
    # proof of what was sent: the SHA-256 of the bytes the SMTP server was given
    assert row["sha256"] == hashlib.sha256(letter.data).hexdigest()
    assert row["undelivered_at"] is None

    for again in (0, 1):  # the same bounce twice: the managers are told once
        ingest(mailbot, tmp_path, bounce(letter), BOUNCED + timedelta(hours=again))
    case = show(mailbot, ref, capsys)
    [row] = [m for m in case["outbound"] if m["kind"] == "deadlock_letter"]
    assert row["undelivered_at"] == BOUNCED.isoformat()
    assert f"{ALICE} 5.1.1 permanent" in row["undelivered_reason"]
    assert case["by_post_due"] == ["deadlock_letter"]
    to_post = [e for e in mailbot.staff_mail(MANAGER) if kind(e) == "by_post"]
    assert len(to_post) == 1
    [enclosed] = list(to_post[0].message.iter_attachments())
    assert enclosed.get_content_type() == "message/rfc822"
    assert enclosed.get_filename() == f"deadlock_letter-{ref}.eml"
    printed = enclosed.get_content()  # the letter itself, to print
    assert printed["Message-ID"] == letter.message["Message-ID"]
    assert text_of(printed) == text_of(letter.message)
    assert "#sent-by-post YYYY-MM-DD" in text_of(to_post[0].message)
    assert figures(mailbot, capsys)["adr_letters_undelivered"] == 1

    staff(mailbot, tmp_path, ref, "#sent-by-post 2026-11-04", BOUNCED + timedelta(days=1), MANAGER)
    case = show(mailbot, ref, capsys)
    assert case["by_post_due"] == []
    [posted] = [e for e in case["events"] if e["action"] == "sent by post"]
    assert posted == {
        "at": (BOUNCED + timedelta(days=1)).isoformat(),
        "actor": MANAGER,
        "action": "sent by post",
        "detail": "the deadlock letter posted on 2026-11-04",
    }
    counted = figures(mailbot, capsys)
    assert (counted["adr_letters_undelivered"], counted["adr_letters_by_post"]) == (1, 1)
    capsys.readouterr()
    assert mailbot("audit", "verify") == 0


def _ref(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    ref: str = json.loads(capsys.readouterr().out)[0]["ref"]
    return ref
