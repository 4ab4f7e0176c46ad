"""Reading broken header blocks: gateway folding, senders in odd places, lying charsets."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mailbot.mail.authentication import verify_sender
from mailbot.mail.compose import unsendable
from mailbot.mail.parse import ParsedMessage, parse_message
from tests.corpus import corpus_dir

BOUNCES = "flufl.bounce/flufl/bounce/tests/data"


def parse(raw: bytes) -> ParsedMessage:
    return parse_message(raw, hashlib.sha256(raw).hexdigest())


def message(*headers: bytes, body: bytes = b"My router drops every evening.\r\n") -> bytes:
    return b"".join(header + b"\r\n" for header in headers) + b"\r\n" + body


# --- a header block with a line folded without white space ---------------------------------


def test_a_line_folded_without_white_space_does_not_end_the_header_block() -> None:
    raw = message(
        b"Received: from gateway.example.net by mx.provider.example; Fri,",
        b"20 Nov 2026 16:10:00 +0000",  # the gateway's fold, with no leading space
        b"From: Alice Customer <alice@example.net>",
        b"Subject: Re: [CMP-2026-000001] My broadband keeps dropping",
        b"In-Reply-To: <mailbot.1@provider.example>",
    )
    parsed = parse(raw)
    assert parsed.sender is not None and parsed.sender.email == "alice@example.net"
    assert parsed.sender_header == "From"
    assert parsed.subject == "Re: [CMP-2026-000001] My broadband keeps dropping"
    assert parsed.in_reply_to == ("<mailbot.1@provider.example>",)
    assert parsed.text == "My router drops every evening."
    assert parsed.header("Received") == (
        "from gateway.example.net by mx.provider.example; Fri, 20 Nov 2026 16:10:00 +0000"
    )
    assert any("folded without white space" in defect for defect in parsed.defects)


def test_a_long_subject_folded_without_white_space_keeps_both_halves() -> None:
    raw = message(
        b"From: Alice Customer <alice@example.net>",
        b"Subject: Re: [CMP-2026-000001] The engineer did not come on Tuesday and",
        b"nobody told me why",
        b"Date: Fri, 20 Nov 2026 16:10:00 +0000",
    )
    parsed = parse(raw)
    assert parsed.subject == (
        "Re: [CMP-2026-000001] The engineer did not come on Tuesday and nobody told me why"
    )
    assert parsed.date is not None


def test_a_missing_blank_line_leaves_the_first_body_line_in_the_body() -> None:
    # no header follows the line without a colon: it starts the body (no repair)
    raw = (
        b"From: Alice Customer <alice@example.net>\r\nSubject: Broadband\r\n"
        b"Hello,\r\nmy line has been down since Monday.\r\n\r\nAlice\r\n"
    )
    parsed = parse(raw)
    assert parsed.subject == "Broadband"
    assert parsed.text.startswith("Hello,\nmy line has been down since Monday.")
    assert not any("folded without white space" in defect for defect in parsed.defects)


def test_a_repaired_header_block_is_only_what_the_parser_reads() -> None:
    raw = message(b"Received: from a by b; Fri,", b"20 Nov 2026", b"From: alice@example.net")
    assert parse(raw).sender is not None
    assert raw.startswith(b"Received: from a by b; Fri,\r\n20 Nov 2026\r\n")  # bytes untouched


# --- the sender: first usable mailbox, then Sender, Reply-To, Return-Path -------------------


def test_from_with_an_empty_first_mailbox_takes_the_first_usable_one() -> None:
    parsed = parse(message(b'From: "Name" <>, "Ltd" <ly@example.com>', b"Subject: Bill"))
    assert parsed.sender is not None
    assert (parsed.sender.name, parsed.sender.email) == ("Ltd", "ly@example.com")
    assert parsed.sender_header == "From"


def test_two_from_headers_the_first_junk_takes_the_second() -> None:
    parsed = parse(
        message(b"From: undisclosed-recipients:;", b"From: Bob <bob@example.org>", b"Subject: x")
    )
    assert parsed.sender is not None and parsed.sender.email == "bob@example.org"
    assert parsed.sender_header == "From"


@pytest.mark.parametrize(
    ("headers", "expected", "taken_from"),
    [
        ((b"From: <>", b"Sender: Carol <carol@example.org>"), "carol@example.org", "Sender"),
        ((b"From: Carol", b"Reply-To: carol@example.org"), "carol@example.org", "Reply-To"),
        ((b"Return-Path: <carol@example.org>", b"From: ???"), "carol@example.org", "Return-Path"),
        (
            (b"From: <>", b"Sender: <>", b"Reply-To: x@y@", b"Return-Path: <carol@example.org>"),
            "carol@example.org",
            "Return-Path",
        ),
    ],
)
def test_no_usable_from_falls_back_to_sender_reply_to_then_return_path(
    headers: tuple[bytes, ...], expected: str, taken_from: str
) -> None:
    parsed = parse(message(*headers, b"Subject: My complaint"))
    assert parsed.sender is not None and parsed.sender.email == expected
    assert parsed.sender_header == taken_from
    assert f"sender taken from {taken_from}" in parsed.defects


def test_a_fallback_sender_keeps_the_name_from_an_empty_from() -> None:
    parsed = parse(message(b'From: "Carol Jones" <>', b"Reply-To: carol@example.org"))
    assert parsed.sender is not None
    assert (parsed.sender.name, parsed.sender.email) == ("Carol Jones", "carol@example.org")


def test_no_usable_address_anywhere_leaves_no_sender_address() -> None:
    parsed = parse(message(b'From: "Name" <>', b"Return-Path: <>", b"Subject: x"))
    assert parsed.sender is None or "@" not in parsed.sender.email
    assert parsed.sender_header == ""


# --- addresses that are not addresses are never written to ----------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("test test@example.com", "space"),
        ("jane@example", "no dot in the domain"),
        ("jane", "one @"),
        ("a@b@example.com", "one @"),
        ("jane..doe@example.com", "not a valid address"),
        ("jane@-example.com", "not a valid address"),
    ],
)
def test_an_address_that_is_not_one_is_unsendable_with_the_reason(address: str, why: str) -> None:
    assert why in unsendable(address)


@pytest.mark.parametrize(
    "address",
    ["jane@example.com", "o'brien+tag@mail.example.co.uk", "x@[192.0.2.1]", "a@xn--bcher-kva.de"],
)
def test_plain_addresses_are_sendable(address: str) -> None:
    assert unsendable(address) == ""


# --- 8-bit header bytes and encoded words whose charset lies --------------------------------


def test_raw_gb2312_subject_is_read_in_the_charset_the_message_declares() -> None:
    raw = message(
        b"From: zhang@example.cn",
        "Subject: 关于宽带服务的投诉".encode("gb2312"),
        b"Content-Type: text/plain; charset=gb2312",
        body="网络每天晚上断线。\r\n".encode("gb2312"),
    )
    assert parse(raw).subject == "关于宽带服务的投诉"


def test_raw_shift_jis_display_name_is_read_in_the_declared_charset() -> None:
    raw = message(
        "From: 山田太郎 <yamada@example.jp>".encode("shift_jis"),
        b"Subject: complaint",
        b"Content-Type: text/plain; charset=Shift_JIS",
    )
    sender = parse(raw).sender
    assert sender is not None and (sender.name, sender.email) == ("山田太郎", "yamada@example.jp")


def test_raw_latin1_subject_without_a_declared_charset_is_not_mojibake() -> None:
    parsed = parse(
        message(b"From: jose@example.es", "Subject: Réclamation: facturé £40".encode("latin-1"))
    )
    assert parsed.subject == "Réclamation: facturé £40"


def test_raw_cyrillic_subject_without_a_declared_charset_is_detected() -> None:
    parsed = parse(
        message(b"From: ivan@example.ru", "Subject: Жалоба на интернет".encode("cp1251"))
    )
    assert parsed.subject == "Жалоба на интернет"


def test_raw_utf8_header_bytes_win_over_a_legacy_body_charset() -> None:
    raw = message(
        "From: Jürgen Müller <jm@example.de>".encode(),
        b"Subject: x",
        b"Content-Type: text/plain; charset=iso-8859-1",
    )
    sender = parse(raw).sender
    assert sender is not None and sender.name == "Jürgen Müller"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        # declared UTF-8, written in Latin-1
        (b"=?utf-8?Q?Caf=E9_service_refus=E9?=", "Café service refusé"),
        # declared ISO-8859-1, written in UTF-8 (Latin-1 "works" and gives "CafÃ©")
        (b"=?iso-8859-1?Q?Caf=C3=A9_closed?=", "Café closed"),
        # declared UTF-8, written in Windows-1251
        (
            b"=?utf-8?B?" + base64.b64encode("Жалоба на интернет".encode("cp1251")) + b"?=",
            "Жалоба на интернет",
        ),
    ],
)
def test_encoded_words_whose_charset_lies_are_read_right(subject: bytes, expected: str) -> None:
    parsed = parse(message(b"From: a@example.com", b"Subject: " + subject))
    assert parsed.subject == expected
    assert "\ufffd" not in parsed.subject


def test_an_encoded_word_declared_utf8_in_a_gb2312_message_is_read_as_gb2312() -> None:
    word = base64.b64encode("邮件传输失败".encode("gb2312")).decode()
    raw = message(
        b"From: li@example.cn",
        f"Subject: =?utf-8?B?{word}?=".encode(),
        b"Content-Type: text/plain; charset=gb2312",
    )
    assert parse(raw).subject == "邮件传输失败"


def test_the_corpus_bounce_with_a_raw_gb2312_subject_is_read() -> None:
    parsed = parse((corpus_dir() / BOUNCES / "sina_01.txt").read_bytes())
    assert parsed.subject == "邮件传输失败！"


def test_the_corpus_mail_with_raw_utf8_in_its_to_header_is_read() -> None:
    parsed = parse((corpus_dir() / "mail-parser/tests/mails/mail_test_12").read_bytes())
    assert [address.email for address in parsed.to] == ["danglüe@email.com"]


def test_a_sender_taken_from_another_header_is_never_verified_as_staff() -> None:
    raw = message(
        b"Authentication-Results: mx.provider.example; dmarc=pass header.from=provider.example",
        b"From: <>",
        b"Sender: Team Leader <leader@provider.example>",
        b"Subject: #resolve fixed",
    )
    parsed = parse(raw)
    assert parsed.sender is not None and parsed.sender.email == "leader@provider.example"
    assert not verify_sender(parsed, ["mx.provider.example"], "dmarc").verified
