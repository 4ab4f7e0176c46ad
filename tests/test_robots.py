"""Robots that real mail holds beyond bounces: receipts, reports, no-reply services, lists."""

from __future__ import annotations

import email
import hashlib
from email.message import Message

import pytest

from mailbot.mail.classify import Classification, Sender, classify
from mailbot.mail.parse import parse_message
from tests.corpus import corpus_files

OWN = frozenset({"complaints@provider.example"})
BOUNCES = "flufl.bounce/flufl/bounce/tests/data"


def classify_raw(raw: bytes) -> Classification:
    return classify(parse_message(raw, hashlib.sha256(raw).hexdigest()), OWN)


def mail(
    *headers: str, body: str = "Some text.", sender: str = "Alice <alice@example.net>"
) -> bytes:
    head = "".join(f"{header}\r\n" for header in headers)
    return (f"From: {sender}\r\nTo: complaints@provider.example\r\n{head}\r\n{body}\r\n").encode()


def report(report_type: str, inner: str, subject: str = "Report") -> bytes:
    return (
        "From: Alice <alice@example.net>\r\nTo: complaints@provider.example\r\n"
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nA report.\r\n"
        f"--b\r\nContent-Type: {inner}\r\n\r\nReporting-UA: x\r\n--b--\r\n"
    ).encode()


# --- every multipart/report ------------------------------------------------------------------


def test_outlooks_read_receipt_is_a_read_receipt_not_a_customer() -> None:
    raw = report(
        "disposition-notification",
        "message/disposition-notification",
        subject="Read: [CMP-2026-000001] My broadband keeps dropping",
    )
    assert classify_raw(raw) == Classification(
        Sender.READ_RECEIPT, "multipart/report disposition-notification"
    )


@pytest.mark.parametrize(
    ("report_type", "inner"),
    [("feedback-report", "message/feedback-report"), ("tlsrpt", "application/tlsrpt+json")],
)
def test_abuse_and_tls_reports_are_reports(report_type: str, inner: str) -> None:
    verdict = classify_raw(report(report_type, inner))
    assert verdict == Classification(Sender.REPORT, f"multipart/report {report_type}")


def test_a_multipart_report_of_an_unknown_type_is_still_a_robot() -> None:
    verdict = classify_raw(report("x-something-new", "text/plain"))
    assert verdict.sender is Sender.REPORT


def test_a_plain_text_read_receipt_is_known_by_subject_and_wording() -> None:
    raw = mail(
        "Subject: Read: [CMP-2026-000001] My broadband keeps dropping",
        body="Your message\r\n\r\n  To: complaints@provider.example\r\n\r\n"
        "was read on 23/11/2026 10:02.",
    )
    assert classify_raw(raw).sender is Sender.READ_RECEIPT


def test_a_customer_whose_subject_starts_with_read_is_a_person() -> None:
    raw = mail("Subject: Read: my bill, it is wrong again", body="I was charged twice.")
    assert classify_raw(raw).sender is Sender.PERSON


def test_a_dmarc_aggregate_report_is_a_report() -> None:
    raw = mail(
        "Subject: Report Domain: provider.example Submitter: google.com Report-ID: 123",
        sender="dmarcreport@microsoft.com",
    )
    assert classify_raw(raw).sender is Sender.REPORT


# --- senders that cannot take a reply ---------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@bank.example",
        "no-reply@accounts.google.com",
        "do_not_reply@apple.com",
        "DoNotReply@billing.example",
        "calendar-notification@google.com",
        "notifications@github.com",
        "noreply-dmarc-support@google.com",
    ],
)
def test_a_sender_that_takes_no_reply_is_a_notification(sender: str) -> None:
    verdict = classify_raw(mail("Subject: Your statement", sender=sender))
    assert verdict.sender is Sender.NOTIFICATION, verdict.reason


@pytest.mark.parametrize(
    "sender", ["noreen@example.net", "renotify.jones@example.org", "bounce.hire@example.co.uk"]
)
def test_people_whose_names_look_like_it_are_people(sender: str) -> None:
    assert classify_raw(mail("Subject: Complaint", sender=sender)).sender is Sender.PERSON


def test_a_service_saying_it_takes_no_reply_is_a_notification() -> None:
    raw = mail(
        "Subject: Your order has shipped",
        sender="orders@shop.example",
        body="This is an automated message. Replies to this email are not monitored.",
    )
    assert classify_raw(raw).sender is Sender.NOTIFICATION


def test_a_customer_quoting_such_wording_is_a_person() -> None:
    raw = mail(
        "Subject: Re: Your order has shipped",
        body="It has not arrived.\r\n\r\nOn Mon, 23 Nov 2026, orders@shop.example wrote:\r\n"
        "> This is an automated message. Replies to this email are not monitored.",
    )
    assert classify_raw(raw).sender is Sender.PERSON


# --- mailing-list processors and carrier gateways ---------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("X-List-Administrivia: yes", "X-List-Administrivia header"),
        ("Sender: gpc-talk-bounces@grizz.org", "Sender is a list robot: gpc-talk-bounces"),
    ],
)
def test_list_processors_replies_without_list_id_are_list_robots(header: str, reason: str) -> None:
    raw = mail(header, "Subject: The results of your email commands")
    assert classify_raw(raw) == Classification(Sender.MAILING_LIST, reason)


@pytest.mark.parametrize("robot", ["LISTSERV@lists.example.edu", "majordomo@example.org"])
def test_list_servers_are_list_robots(robot: str) -> None:
    raw = mail("Subject: Command confirmation", sender=robot)
    assert classify_raw(raw).sender is Sender.MAILING_LIST


def test_a_carrier_gateways_automatic_answer_is_an_auto_reply() -> None:
    raw = mail("Subject: Re: [CMP-2026-000001] Acknowledgement", sender="vzwmail@vtext.com")
    assert classify_raw(raw) == Classification(Sender.AUTO_REPLY, "SMS gateway vtext.com")


def test_a_text_from_a_phone_through_a_gateway_is_a_person() -> None:
    raw = mail("Subject: my broadband", sender="5551234567@vtext.com")
    assert classify_raw(raw).sender is Sender.PERSON


@pytest.mark.parametrize(
    "header",
    ["X-Autogenerated: Reply", "X-AutoReply-From: alice@example.net", "X-Mail-Autoreply: yes"],
)
def test_older_robots_auto_reply_headers_are_auto_replies(header: str) -> None:
    assert classify_raw(mail(header, "Subject: Re: hello")).sender is Sender.AUTO_REPLY


# --- learnt from the real bounces: the list processors' replies they return -------------------


def returned_list_replies() -> list[tuple[str, Message]]:
    """The list processors' own replies that real bounces carry back (Mailman's command
    results, "awaits moderator approval", unsubscribe notices)."""
    found = []
    for path in corpus_files(BOUNCES):
        for part in email.message_from_bytes(path.read_bytes()).walk():
            inner = part.get_payload()
            if part.get_content_type() == "message/rfc822" and isinstance(inner, list):
                returned = inner[0]
                if isinstance(returned, Message) and returned.get("X-List-Administrivia"):
                    found.append((path.name, returned))
    return found


def test_the_real_bounces_return_list_processor_replies() -> None:
    assert len(returned_list_replies()) >= 5


@pytest.mark.parametrize(
    ("name", "returned"), returned_list_replies(), ids=[n for n, _ in returned_list_replies()]
)
def test_a_list_processors_reply_is_a_robot_even_without_its_list_id(
    name: str, returned: Message
) -> None:
    # LISTSERV, Majordomo and older Mailmans write no List-Id on their replies
    del returned["List-Id"], returned["Precedence"]
    verdict = classify_raw(returned.as_bytes())
    assert verdict.sender is Sender.MAILING_LIST, verdict.reason
