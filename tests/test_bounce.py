"""Reading failed recipients and returned Message-IDs out of bounces (RFC 3464 and prose)."""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailbot.mail.bounce import BounceReport, FailedRecipient, read_bounce
from tests.corpus import corpus_dir

BOUNCE_DATA = "flufl.bounce/flufl/bounce/tests/data"
# Measured: 101 of the 102 corpus expectations (see test_corpus_expectation_rate).
MIN_EXPECTATION_RATE = 0.99

OUR_ID = "<mailbot.0123456789abcdef0123456789abcdef@provider.example>"


@dataclass(frozen=True)
class Expectation:
    """One labelled detector result for one corpus bounce."""

    sample: str
    addresses: frozenset[str]
    permanent: bool

    @property
    def path(self) -> Path:
        return corpus_dir() / BOUNCE_DATA / self.sample


def load_expectations() -> list[Expectation]:
    labels = json.loads((corpus_dir() / "flufl.bounce" / "labels.json").read_text())
    return [
        Expectation(
            sample,
            frozenset(address.lower() for address in expectation["expected_addresses"]),
            expectation["failure"] == "permanent",
        )
        for sample, entry in sorted(labels["samples"].items())
        for expectation in entry["expectations"]
    ]


EXPECTATIONS = load_expectations()


def unmet(expectation: Expectation, report: BounceReport) -> str:
    """Why REPORT does not satisfy EXPECTATION, or "" when it does."""
    found = {recipient.address: recipient for recipient in report.recipients}
    missing = sorted(expectation.addresses - found.keys())
    if missing:
        return f"missing {missing}; read {sorted(found)}"
    wrong = sorted(
        address
        for address in expectation.addresses
        if found[address].permanent is not expectation.permanent
    )
    if wrong:
        return f"permanent should be {expectation.permanent} for {wrong}"
    return ""


def test_corpus_expectation_rate() -> None:
    failures = {
        f"{e.sample}: {problem}"
        for e in EXPECTATIONS
        if (problem := unmet(e, read_bounce(e.path.read_bytes())))
    }
    satisfied = len(EXPECTATIONS) - len(failures)
    print(f"bounce expectations met: {satisfied}/{len(EXPECTATIONS)}")
    assert len(EXPECTATIONS) == 102
    assert satisfied / len(EXPECTATIONS) >= MIN_EXPECTATION_RATE, sorted(failures)


def corpus_samples() -> list[Path]:
    folder = corpus_dir() / BOUNCE_DATA
    return sorted(path for path in folder.iterdir() if path.suffix == ".txt")


@pytest.mark.parametrize("path", corpus_samples(), ids=lambda path: path.name)
def test_corpus_bounce_does_not_blame_the_daemon_or_us(path: Path) -> None:
    raw = path.read_bytes()
    report = read_bounce(raw)
    bounce = email.message_from_bytes(raw, policy=email.policy.compat32)
    ours = {
        address.lower()
        for _, address in email.utils.getaddresses(
            [str(value) for name in ("From", "To") for value in bounce.get_all(name) or []]
        )
    }
    for recipient in report.recipients:
        local_part = recipient.address.partition("@")[0]
        assert local_part not in ("postmaster", "mailer-daemon"), recipient
        assert recipient.address not in ours, recipient
        assert recipient.address == recipient.address.lower()
    own_id = "".join(str(bounce.get("Message-ID", "")).split())
    assert own_id not in report.original_message_ids or not own_id


def dsn(action: str, status: str, diagnostic: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: complaints@provider.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn.1@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n"
        "--B\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "Your message could not be delivered to <alice@example.net>.\r\n"
        "For help, contact <postmaster@example.net>.\r\n"
        "--B\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "\r\n"
        "Final-Recipient: rfc822; Alice@Example.NET\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n"
        "\r\n"
        "--B\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        "From: Complaints <complaints@provider.example>\r\n"
        "To: alice@example.net\r\n"
        "Subject: Your complaint 2024-0042\r\n"
        f"Message-ID: {OUR_ID}\r\n"
        "References: <older@example.net>\r\n"
        "\r\n"
        "We have received your complaint.\r\n"
        "--B--\r\n"
    ).encode()


def test_dsn_for_our_message_names_it_and_the_failed_recipient() -> None:
    report = read_bounce(dsn("failed", "5.1.1", "550 5.1.1 <alice@example.net> User unknown"))
    assert report.original_message_ids == (OUR_ID,)
    assert report.recipients == (FailedRecipient("alice@example.net", "5.1.1", True),)
    assert report.permanent


def test_delayed_dsn_is_not_permanent() -> None:
    report = read_bounce(dsn("delayed", "4.4.1", "451 4.4.1 no answer from host"))
    assert report.original_message_ids == (OUR_ID,)
    assert report.recipients == (FailedRecipient("alice@example.net", "4.4.1", False),)
    assert not report.permanent


def test_rfc822_headers_part_gives_the_returned_id() -> None:
    raw = dsn("failed", "5.2.2", "552 mailbox full").replace(
        b"Content-Type: message/rfc822", b"Content-Type: text/rfc822-headers"
    )
    report = read_bounce(raw)
    assert report.original_message_ids == (OUR_ID,)
    assert report.recipients[0].status == "5.2.2"


QMAIL_BOUNCE = (
    b"From: MAILER-DAEMON@mail.example.org\r\n"
    b"To: complaints@provider.example\r\n"
    b"Subject: failure notice\r\n"
    b"Message-ID: <bounce.7@mail.example.org>\r\n"
    b"\r\n"
    b"Hi. This is the qmail-send program at mail.example.org.\r\n"
    b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
    b"\r\n"
    b"<bob@example.org>:\r\n"
    b"Sorry, no mailbox here by that name. (#5.1.1)\r\n"
    b"\r\n"
    b"--- Below this line is a copy of the message.\r\n"
    b"\r\n"
    b"Return-Path: <complaints@provider.example>\r\n"
    b"From: complaints@provider.example\r\n"
    b"To: bob@example.org, carol@example.org\r\n"
    b"Message-ID: " + OUR_ID.encode() + b"\r\n"
    b"Subject: Your complaint\r\n"
    b"\r\n"
    b"Write to me at dave@example.com if needed.\r\n"
)


def test_prose_bounce_reads_the_notice_and_the_quoted_message_id() -> None:
    report = read_bounce(QMAIL_BOUNCE)
    assert report.original_message_ids == (OUR_ID,)
    assert report.recipients == (FailedRecipient("bob@example.org", "5.1.1", True),)


def test_prose_warning_is_temporary() -> None:
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@relay.example.org>\r\n"
        b"To: complaints@provider.example\r\n"
        b"Subject: Warning: message delayed\r\n"
        b"\r\n"
        b"This message was created automatically by mail delivery software.\r\n"
        b"A message that you sent has not yet been delivered to one or more of its\r\n"
        b"recipients after more than 24 hours on the queue on relay.example.org.\r\n"
        b"\r\n"
        b"  erin@example.org\r\n"
        b"    host mx.example.org: 451 4.3.0 try later\r\n"
        b"\r\n"
        b"No action is required on your part. Delivery attempts will continue.\r\n"
    )
    report = read_bounce(raw)
    assert report.recipients == (FailedRecipient("erin@example.org", "4.3.0", False),)
    assert not report.permanent


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        os.urandom(4096),
        b"Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\n" * 50,
        b"Content-Type: message/rfc822\r\n\r\n" * 200,
        b"From: a\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: ;;;\r\n",
    ],
    ids=["empty", "binary", "random", "unterminated-multipart", "nested-rfc822", "bad-dsn"],
)
def test_garbage_gives_an_empty_report(raw: bytes) -> None:
    report = read_bounce(raw)
    assert report == BounceReport((), ())
    assert not report.permanent
