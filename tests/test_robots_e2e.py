"""Real mail's robots and broken headers end to end: Dovecot -> mailbot run --once -> SMTP."""

from __future__ import annotations

import json
from email.utils import make_msgid
from typing import Any

import pytest

from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_intake_e2e import FRIDAY_4PM, complaint
from tests.test_staff_e2e import staff_reply


def the_case(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    [case] = json.loads(capsys.readouterr().out)
    assert isinstance(case, dict)
    return case


def outlook_read_receipt(ref: str, subject: str, original_id: str) -> tuple[bytes, str]:
    """What Outlook sends when the customer opens our letter with receipts turned on."""
    message_id = make_msgid(domain="example.net")
    raw = (
        "From: Alice Customer <alice@example.net>\r\nTo: complaints@provider.example\r\n"
        f"Subject: Read: [{ref}] {subject}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: {message_id}\r\nIn-Reply-To: {original_id}\r\nReferences: {original_id}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=disposition-notification;\r\n"
        '\tboundary="----=_NextPart_000_0001"\r\n\r\n'
        "------=_NextPart_000_0001\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Your message\r\n\r\n  To: Alice Customer\r\n  Subject: [{ref}] {subject}\r\n\r\n"
        "was read on 23/11/2026 10:00.\r\n\r\n"
        "------=_NextPart_000_0001\r\nContent-Type: message/disposition-notification\r\n\r\n"
        "Reporting-UA: EXCH01.example.net; Microsoft Exchange Server\r\n"
        "Final-Recipient: rfc822;alice@example.net\r\n"
        f"Original-Message-ID: {original_id}\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n"
        "------=_NextPart_000_0001--\r\n"
    )
    return raw.encode(), message_id


def test_a_read_receipt_naming_a_case_is_recorded_never_answered_nor_a_customer_reply(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0
    ref = str(the_case(mailbot, capsys)["ref"])
    resolve, _ = staff_reply(TEAM_LEADER, "#resolve Line repaired", f"RE: [{ref}] x")
    mailbot.append(resolve)
    assert mailbot("run", "--once") == 0
    [_, resolution] = mailbot.customer_mail()
    assert resolution.message["X-Mailbot-Kind"] == "resolution"
    sent_before = len(mailbot.smtp.received)

    receipt, receipt_id = outlook_read_receipt(
        ref, "My broadband keeps dropping", str(resolution.message["Message-ID"])
    )
    mailbot.append(receipt)
    assert mailbot("run", "--once") == 0

    assert len(mailbot.smtp.received) == sent_before, "nobody is told or answered"
    case = the_case(mailbot, capsys)
    assert case["status"] == "resolved", "a read receipt never reopens a case"
    kinds = {m["message_id"]: m["kind"] for m in case["messages"]}
    assert kinds[receipt_id] == "read_receipt"
    [event] = [e for e in case["events"] if e["action"] == "read_receipt"]
    assert event["actor"] == "mailbot"
    assert event["detail"] == "multipart/report disposition-notification"


def test_a_gateway_folded_reply_keeps_its_from_and_subject_and_threads_onto_its_case(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0
    [ack] = mailbot.customer_mail()
    ref = str(the_case(mailbot, capsys)["ref"])
    reply_id = make_msgid(domain="example.net")
    reply = (
        "Received: from gateway.example.net by mx.provider.example; Fri,\r\n"
        "20 Nov 2026 16:30:00 +0000\r\n"  # folded without leading white space
        "From: Alice Customer <alice@example.net>\r\nTo: complaints@provider.example\r\n"
        f"Subject: Re: [{ref}] My broadband keeps dropping\r\nMessage-ID: {reply_id}\r\n"
        f"In-Reply-To: {ack.message['Message-ID']}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "It dropped again last night at 9pm.\r\n"
    ).encode()
    mailbot.append(reply)
    assert mailbot("run", "--once") == 0

    assert len(mailbot.customer_mail()) == 1, "a reply gets no second acknowledgement"
    case = the_case(mailbot, capsys)
    [message] = [m for m in case["messages"] if m["message_id"] == reply_id]
    assert message["kind"] == "customer_reply"
    assert message["from"]["address"] == "alice@example.net"
    assert message["subject"] == f"Re: [{ref}] My broadband keeps dropping"
    told = [e.text for e in mailbot.staff_mail(TEAM_LEADER)]
    assert any("It dropped again last night" in text for text in told)


def test_a_customer_whose_address_is_not_one_gets_a_case_and_no_letter(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint(sender="Alice Customer <alice@example>")  # no dot in the domain
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0

    assert mailbot.customer_mail() == [], "never written to"
    case = the_case(mailbot, capsys)
    assert case["customer_email"] == "alice@example"
    why = [e["detail"] for e in case["events"]] + [o["last_error"] or "" for o in case["outbound"]]
    assert any("no dot in the domain" in reason for reason in why), why
    assert mailbot.staff_mail(TEAM_LEADER), "staff hear of the complaint all the same"


def test_a_staff_reply_to_an_address_that_is_not_one_is_kept_and_staff_told_it_did_not_go(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint(sender="Alice Customer <alice@example>")  # no dot in the domain
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0
    ref = str(the_case(mailbot, capsys)["ref"])
    reply, _ = staff_reply(TEAM_LEADER, "We have booked an engineer.", f"RE: [{ref}] x")
    mailbot.append(reply)
    assert mailbot("run", "--once") == 0

    assert mailbot.customer_mail() == []
    [done] = [e for e in mailbot.staff_mail(TEAM_LEADER) if ": done." in e.text]
    assert "could not send your reply to alice@example" in done.text
    assert "sent your reply" not in done.text
    [held] = [o for o in the_case(mailbot, capsys)["outbound"] if o["kind"] == "staff_reply"]
    assert held["status"] == "held"


def test_a_reply_to_without_an_address_leaves_the_letters_to_the_from_address(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint(extra_headers='Reply-To: "Alice Customer" <>\r\n')
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0

    assert the_case(mailbot, capsys)["customer_email"] == "alice@example.net"
    [ack] = mailbot.customer_mail()
    assert ack.rcpt_tos == ["alice@example.net"]


def test_a_read_receipt_naming_our_letter_only_inside_is_recorded_on_its_case(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0
    [ack] = mailbot.customer_mail()
    receipt, receipt_id = outlook_read_receipt("x", "y", str(ack.message["Message-ID"]))
    # a client that keeps no subject and no thread headers: only the report names our letter
    receipt = (
        receipt.replace(b"Subject: Read: [x] y", b"Subject: Read: your message")
        .replace(b"In-Reply-To: ", b"X-Was-In-Reply-To: ")
        .replace(b"References: ", b"X-Was-References: ")
    )
    mailbot.append(receipt)
    assert mailbot("run", "--once") == 0

    kinds = {m["message_id"]: m["kind"] for m in the_case(mailbot, capsys)["messages"]}
    assert kinds[receipt_id] == "read_receipt"
    assert len(mailbot.customer_mail()) == 1, "never answered"
