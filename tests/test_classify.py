"""Telling customers from bounces, auto-replies, lists and our own mail (RFC 3834)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mailbot.mail.classify import LOOP_HEADER, Classification, Sender, classify
from mailbot.mail.parse import parse_message
from tests.corpus import corpus_files

OWN = frozenset({"complaints@shop.example"})

CUSTOMER_MAIL = (
    b"From: Jane Doe <jane@example.com>\r\n"
    b"To: complaints@shop.example\r\n"
    b"Subject: My parcel was never delivered\r\n"
    b"Message-ID: <c1@example.com>\r\n"
    b"\r\n"
    b"I ordered a kettle three weeks ago and it could not be delivered, they say.\r\n"
)


def classify_raw(raw: bytes, own: frozenset[str] = OWN) -> Classification:
    return classify(parse_message(raw, hashlib.sha256(raw).hexdigest()), own)


def with_headers(*headers: str, subject: str = "Hello") -> bytes:
    head = "".join(f"{header}\r\n" for header in headers)
    return (
        f"From: Someone <someone@example.org>\r\nTo: complaints@shop.example\r\n"
        f"Subject: {subject}\r\n{head}\r\nSome text.\r\n"
    ).encode()


@pytest.mark.parametrize(
    "path",
    corpus_files("flufl.bounce/flufl/bounce/tests/data"),
    ids=lambda path: path.name,
)
def test_every_flufl_bounce_is_classified_as_bounce(path: Path) -> None:
    verdict = classify_raw(path.read_bytes(), frozenset())
    assert verdict.sender is Sender.BOUNCE, verdict.reason
    assert verdict.is_machine


def test_the_corpus_holds_all_103_flufl_bounces() -> None:
    assert len(corpus_files("flufl.bounce/flufl/bounce/tests/data")) == 103


def test_plain_customer_mail_is_a_person() -> None:
    verdict = classify_raw(CUSTOMER_MAIL)
    assert verdict == Classification(Sender.PERSON, "no automation headers")
    assert not verdict.is_machine


def test_customer_complaining_about_a_delivery_failure_is_still_a_person() -> None:
    raw = with_headers(subject="Delivery failure - order 1234")
    assert classify_raw(raw).sender is Sender.PERSON


def test_auto_submitted_auto_replied_is_an_auto_reply() -> None:
    verdict = classify_raw(with_headers("Auto-Submitted: auto-replied"))
    assert verdict == Classification(Sender.AUTO_REPLY, "Auto-Submitted: auto-replied")


def test_auto_submitted_no_is_a_person() -> None:
    assert classify_raw(with_headers("Auto-Submitted: no")).sender is Sender.PERSON


def test_x_autoreply_is_an_auto_reply() -> None:
    verdict = classify_raw(with_headers("X-Autoreply: yes"))
    assert verdict == Classification(Sender.AUTO_REPLY, "X-Autoreply header")


def test_precedence_auto_reply_is_an_auto_reply() -> None:
    assert classify_raw(with_headers("Precedence: auto_reply")).sender is Sender.AUTO_REPLY


def test_exchange_auto_response_suppress_is_an_auto_reply() -> None:
    verdict = classify_raw(with_headers("X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply"))
    assert verdict.sender is Sender.AUTO_REPLY


@pytest.mark.parametrize(
    "subject",
    ["Out of Office: My parcel", "Automatic reply: My parcel", "Auto: My parcel", "AutoReply"],
)
def test_out_of_office_subject_is_an_auto_reply(subject: str) -> None:
    assert classify_raw(with_headers(subject=subject)).sender is Sender.AUTO_REPLY


def test_empty_return_path_without_bounce_wording_is_an_auto_reply() -> None:
    verdict = classify_raw(with_headers("Return-Path: <>"))
    assert verdict == Classification(Sender.AUTO_REPLY, "Return-Path: <>")


def test_empty_return_path_with_bounce_subject_is_a_bounce() -> None:
    raw = with_headers("Return-Path: <>", subject="Undeliverable: My parcel")
    assert classify_raw(raw).sender is Sender.BOUNCE


def test_multipart_report_delivery_status_is_a_bounce() -> None:
    raw = (
        b"From: gateway@example.net\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        b"--R\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
        b"--R\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; example.net\r\n\r\nFinal-Recipient: rfc822; x@example.org\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n\r\n--R--\r\n"
    )
    verdict = classify_raw(raw)
    assert verdict == Classification(Sender.BOUNCE, "multipart/report delivery-status")


def test_mail_from_mailer_daemon_is_a_bounce() -> None:
    raw = CUSTOMER_MAIL.replace(b"jane@example.com", b"MAILER-DAEMON@example.com")
    assert classify_raw(raw) == Classification(Sender.BOUNCE, "From mailer-daemon")


def test_list_id_is_a_mailing_list() -> None:
    verdict = classify_raw(with_headers("List-Id: <news.example.org>"))
    assert verdict == Classification(Sender.MAILING_LIST, "List-Id header")


def test_precedence_bulk_is_a_mailing_list() -> None:
    verdict = classify_raw(with_headers("Precedence: bulk"))
    assert verdict == Classification(Sender.MAILING_LIST, "Precedence: bulk")


def test_list_unsubscribe_with_precedence_list_is_a_mailing_list() -> None:
    raw = with_headers("List-Unsubscribe: <mailto:leave@example.org>", "Precedence: list")
    assert classify_raw(raw).sender is Sender.MAILING_LIST


def test_mail_from_our_own_address_is_own_mail() -> None:
    raw = CUSTOMER_MAIL.replace(b"jane@example.com", b"Complaints@Shop.Example")
    assert classify_raw(raw).sender is Sender.OWN_MAIL


def test_mail_carrying_our_loop_header_is_own_mail_even_if_it_looks_like_a_bounce() -> None:
    raw = with_headers(f"{LOOP_HEADER}: case-17", "Auto-Submitted: auto-replied")
    verdict = classify_raw(raw)
    assert verdict == Classification(Sender.OWN_MAIL, f"{LOOP_HEADER} header")


def test_bounce_wins_over_auto_reply_headers() -> None:
    raw = CUSTOMER_MAIL.replace(b"jane@example.com", b"postmaster@example.com")
    raw = raw.replace(b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:")
    assert classify_raw(raw).sender is Sender.BOUNCE


def test_a_copy_of_our_own_message_is_own_mail() -> None:
    raw = (
        b"From: Someone <someone@example.net>\r\nTo: complaints@provider.example\r\n"
        b"Message-ID: <mailbot.0123456789abcdef0123456789abcdef@provider.example>\r\n"
        b"Subject: [CMP-2026-000001] We have received your complaint\r\n\r\nhello\r\n"
    )
    verdict = classify(parse_message(raw, "0" * 64), frozenset({"complaints@provider.example"}))
    assert verdict.sender is Sender.OWN_MAIL
    assert "Message-ID" in verdict.reason


# The corpus has no feedback-loop report outside multipart/report, no list manager's notice
# with fml's headers and no post_master bounce: these follow the shapes their senders document.
JMRP = (
    b"From: staff@hotmail.com\r\n"
    b"To: abuse@shop.example\r\n"
    b"Subject: complaint about message from 192.0.2.25\r\n"
    b"Message-ID: <jmrp1@hotmail.com>\r\n"
    b"X-HmXmrOriginalRecipient: <grace@hotmail.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="jmrp"\r\n\r\n'
    b"--jmrp\r\nContent-Type: text/plain\r\n\r\n"
    b"This is an email abuse report for an email message received from IP 192.0.2.25.\r\n"
    b"--jmrp\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
    b"From: Complaints <complaints@shop.example>\r\nTo: grace@hotmail.com\r\n"
    b"Subject: [CMP-2026-000001] Your complaint\r\n"
    b"Message-ID: <mailbot.abc@shop.example>\r\n\r\nWe have received your complaint.\r\n"
    b"--jmrp--\r\n"
)


def test_microsofts_jmrp_feedback_report_is_a_report_never_answered() -> None:
    verdict = classify_raw(JMRP)
    assert verdict.sender is Sender.REPORT
    assert "complaint about message from 192.0.2.25" in verdict.reason


def test_a_customer_writing_complaint_about_message_from_in_plain_text_is_a_person() -> None:
    raw = with_headers(subject="complaint about message from 192.0.2.25")
    assert classify_raw(raw).sender is Sender.PERSON


@pytest.mark.parametrize("header", ["X-ML-Name: users-jp", "X-MLServer: fml [fml 4.0.3]"])
def test_a_list_managers_notice_is_list_mail(header: str) -> None:
    raw = with_headers(header, "X-ML-Count: 1024", subject="Loop Alert: users-jp")
    assert classify_raw(raw).sender is Sender.MAILING_LIST


@pytest.mark.parametrize("local", ["post_master", "Post-Master", "mail-daemon"])
def test_bounces_from_post_master_style_senders_are_bounces(local: str) -> None:
    raw = (
        f"From: {local}@mx.example.org\r\nTo: complaints@shop.example\r\n"
        "Subject: Your message\r\n\r\nYour message to grace@example.org was not delivered.\r\n"
        "> From: complaints@shop.example\r\n> Subject: [CMP-2026-000001] Your complaint\r\n"
    ).encode()
    assert classify_raw(raw).sender is Sender.BOUNCE
