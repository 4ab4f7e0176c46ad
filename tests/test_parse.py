"""Parsing real and broken mail into ParsedMessage without ever raising."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.mail.classify import Sender, classify
from mailbot.mail.parse import ParsedMessage, parse_message
from tests.corpus import corpus_dir, corpus_files

MAIL_PARSER_MAILS = "mail-parser/tests/mails"

# What each mail-parser test mail holds: From address, whether it has body text,
# how many attachments, and how classify() sees it. mail_malformed_2 is a real DSN.
MAIL_PARSER_EXPECTED: dict[str, tuple[str | None, bool, int, Sender]] = {
    "mail_malformed_1": ("femucca@tin.it", True, 1, Sender.PERSON),
    "mail_malformed_2": ("postmaster@netpar.com.br", True, 1, Sender.BOUNCE),
    "mail_malformed_3": ("smgsiso@yahoo.com.mx", True, 0, Sender.PERSON),
    # an Outlook .msg file, not RFC 822: binary "text" is kept as an attachment, not read
    "mail_outlook_1": (None, False, 1, Sender.PERSON),
    "mail_test_1": ("suvorov.s@nalg.ru", True, 1, Sender.PERSON),
    "mail_test_10": ("nicoletta_bernasconi@it.ibm.com", True, 4, Sender.PERSON),
    "mail_test_11": ("suvorov.s@nalg.ru", True, 1, Sender.PERSON),
    "mail_test_12": ("baoguan@hotmail.com", True, 0, Sender.PERSON),
    "mail_test_13": ("info@continuityinsights.com", True, 0, Sender.MAILING_LIST),
    "mail_test_14": ("example@example.com", True, 1, Sender.PERSON),
    "mail_test_15": ("do-not-reply@ncs.gov.ng", True, 1, Sender.NOTIFICATION),  # takes no reply
    "mail_test_16": ("sender@example.net", True, 0, Sender.AUTO_REPLY),  # Precedence: junk
    "mail_test_17": ("notificaccion-clientes@bbva.mx", True, 0, Sender.PERSON),
    "mail_test_18": ("comma.name@example.com", True, 0, Sender.PERSON),
    "mail_test_19": ("bob@example.com", True, 0, Sender.PERSON),
    "mail_test_2": ("meteo@regione.vda.it", True, 3, Sender.PERSON),
    "mail_test_3": ("oneil.844@randtelekom.com.tr", True, 1, Sender.PERSON),
    "mail_test_4": ("anabelgonzalo@fanox.com", True, 2, Sender.PERSON),
    "mail_test_5": ("contact@carlance.fr", True, 5, Sender.MAILING_LIST),
    "mail_test_6": ("noreply@ggg.com", True, 4, Sender.MAILING_LIST),
    "mail_test_7": ("geronazzo@voidstudicom.it", True, 8, Sender.PERSON),
    "mail_test_8": ("helicopter_flight_simulator@moneytrack.top", True, 0, Sender.PERSON),
    "mail_test_9": ("zyb@sgis.com.cn", True, 0, Sender.PERSON),
}


def parse(raw: bytes) -> ParsedMessage:
    return parse_message(raw, hashlib.sha256(raw).hexdigest())


def parse_corpus_mail(name: str) -> ParsedMessage:
    return parse((corpus_dir() / MAIL_PARSER_MAILS / name).read_bytes())


def test_the_corpus_holds_the_23_mail_parser_mails() -> None:
    names = {path.name for path in corpus_files(MAIL_PARSER_MAILS)}
    assert names == set(MAIL_PARSER_EXPECTED)


@pytest.mark.parametrize("path", corpus_files(MAIL_PARSER_MAILS), ids=lambda path: path.name)
def test_every_mail_parser_mail_keeps_id_sender_text_and_attachments(path: Path) -> None:
    sender, has_text, attachment_count, _ = MAIL_PARSER_EXPECTED[path.name]
    message = parse(path.read_bytes())
    assert message.message_id.startswith("<")
    assert message.message_id.endswith(">")
    assert len(message.message_id) > 2
    assert (message.sender.email if message.sender else None) == sender
    assert bool(message.text.strip()) == has_text
    assert len(message.attachments) == attachment_count
    for attachment in message.attachments:
        assert attachment.payload
        assert attachment.filename not in ("", ".", "..")
        assert "/" not in attachment.filename
        assert "\\" not in attachment.filename


@pytest.mark.parametrize("path", corpus_files(MAIL_PARSER_MAILS), ids=lambda path: path.name)
def test_only_the_real_bounce_among_mail_parser_mails_is_a_bounce(path: Path) -> None:
    *_, expected = MAIL_PARSER_EXPECTED[path.name]
    assert classify(parse(path.read_bytes()), frozenset()).sender is expected


def test_cyrillic_encoded_subject_sender_and_attachment_name_decode() -> None:
    message = parse_corpus_mail("mail_test_1")
    assert message.subject == "письмо уведом-е"
    assert message.sender is not None
    assert message.sender.name == "служба ФНС Даниил Суворов"
    [attachment] = message.attachments
    # The name arrives as raw 8-bit UTF-8 in the header, not RFC 2231 or 2047.
    assert attachment.filename == "ФНС_РФ558.zip"
    assert len(attachment.payload) == 8932
    assert attachment.payload.startswith(b"PK")


def test_html_only_mail_becomes_readable_text() -> None:
    message = parse_corpus_mail("mail_test_1")
    assert "Налогоплательщик" in message.text
    assert "<" not in message.text


def test_latin1_and_gb2312_encoded_words_decode() -> None:
    assert parse_corpus_mail("mail_test_5").subject == "Je prépare mon été zéro complexe !"
    chinese = parse_corpus_mail("mail_test_12")
    assert chinese.subject == "代开各地增值税发票"
    assert chinese.sender is not None
    assert chinese.sender.name == "张先生"
    assert "增值税发票" in chinese.text


def test_gb2312_label_on_gbk_text_decodes_without_replacement_characters() -> None:
    message = parse_corpus_mail("mail_test_9")
    assert message.subject
    assert "\ufffd" not in message.subject


def test_pdf_attachment_keeps_its_name_and_exact_size() -> None:
    message = parse_corpus_mail("mail_test_2")
    names = [attachment.filename for attachment in message.attachments]
    assert names == ["intestazione.jpg", "logometeo.jpg", "Bollettino.pdf"]
    pdf = message.attachments[2]
    assert len(pdf.payload) == 1089942
    assert pdf.payload.startswith(b"%PDF")


def test_long_encoded_attachment_name_is_cut_to_100_chars_keeping_extension() -> None:
    [attachment] = parse_corpus_mail("mail_test_11").attachments
    assert attachment.filename.startswith("Prokuratura Rejonowa Warszawa-Śródmieście północ")
    assert attachment.filename.endswith(".pdf")
    assert len(attachment.filename) <= 100


def test_attachment_lost_in_epilogue_of_malformed_mail_is_recovered() -> None:
    message = parse_corpus_mail("mail_malformed_1")
    [attachment] = message.attachments
    assert attachment.filename == "20160523_916527.jpg_.zip"
    assert attachment.content_type == "application/zip"
    assert len(attachment.payload) == 86908
    assert message.text == "--Sent from my iPhone"


def test_multipart_with_wrong_boundary_still_yields_its_text() -> None:
    message = parse_corpus_mail("mail_malformed_3")
    assert "Problemas para visualizar" in message.text
    assert any("boundary" in defect for defect in message.defects)


def test_named_inline_text_part_is_an_attachment_not_body() -> None:
    message = parse_corpus_mail("mail_test_3")
    assert [attachment.filename for attachment in message.attachments] == ["message.txt"]
    assert message.attachments[0].content_type == "text/plain"
    assert message.text.startswith("I am sending you the bills")


def test_display_names_with_commas_or_at_signs_keep_the_real_address() -> None:
    comma = parse_corpus_mail("mail_test_18").sender
    assert comma is not None
    assert (comma.name, comma.email) == ("LastßlName, FirstName", "comma.name@example.com")
    at_sign = parse_corpus_mail("mail_test_19").sender
    assert at_sign is not None
    assert (at_sign.name, at_sign.email) == ("alice@example.com", "bob@example.com")


def test_outlook_msg_file_without_headers_getsgenerated_message_id_and_no_sender() -> None:
    raw = (corpus_dir() / MAIL_PARSER_MAILS / "mail_outlook_1").read_bytes()
    message = parse(raw)
    assert message.message_id == f"<{hashlib.sha256(raw).hexdigest()[:32]}@mailbot.generated>"
    assert message.sender is None


# An unterminated nested multipart: mail-parser 4.8.0's own walk of the parts raises
# AttributeError in find_between; mailbot takes only its tree and its defects.
UNTERMINATED_BOUNDARY = (
    b'From: Ann <ann@example.com>\r\nContent-Type: multipart/mixed; boundary="AA"\r\n\r\n'
    b"--AA\r\nContent-Type: text/plain\r\n\r\nMy order never arrived.\r\n"
    b'--AA\r\nContent-Type: multipart/alternative; boundary="BB"\r\n\r\nno start\r\n'
)


def test_an_unterminated_nested_multipart_is_read_with_its_defects_named() -> None:
    message = parse(UNTERMINATED_BOUNDARY)
    assert message.parser == "mail-parser"
    assert "mail-parser: StartBoundaryNotFoundDefect" in message.defects
    assert message.sender is not None
    assert message.sender.email == "ann@example.com"
    assert message.text == "My order never arrived."


def test_mail_nested_too_deep_for_any_parser_is_unreadable_with_each_failure_named() -> None:
    levels = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
        for n in range(3000)
    )
    raw = b"From: Ann <ann@example.com>\r\nSubject: deep\r\n" + levels + b"\r\nhello\r\n"
    message = parse(raw)
    assert message.parser == "email" and message.sender is None
    assert [defect.split(":")[0] for defect in message.defects] == [
        "mail-parser failed",
        "email (EmailPolicy()) failed",
        "email (Compat32()) failed",
    ]
    assert "MailParserRecursionError" in message.defects[0]


def test_well_formed_mail_is_parsed_by_mail_parser() -> None:
    message = parse(b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n")
    assert message.parser == "mail-parser"
    assert message.text == "body"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff",
        b"Subject: headers only\r\nFrom: a@example.com\r\n",
        UNTERMINATED_BOUNDARY,
        b"Content-Type: text/plain; charset=x-foo\r\n\r\nh\xe9llo",
        b"Content-Type: text/plain; charset=x-unknown\r\nSubject: =?x-foo?B?aGk=?=\r\n\r\n\xff",
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\nx",
        b"Date: not a date\r\nMessage-ID:\r\nReferences: junk <a@b> <<c@d>>\r\n\r\n",
        b"Subject: =?utf-8?B?!!!?=\r\nFrom: =?utf-8?q?broken\r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all",
    ],
    ids=[
        "empty",
        "binary",
        "headers-only",
        "unterminated-boundary",
        "unknown-charset",
        "unknown-charset-in-header",
        "rfc822-around-broken-multipart",
        "bad-date-and-ids",
        "broken-encoded-words",
        "multipart-without-boundary",
    ],
)
def test_garbage_never_raises(raw: bytes) -> None:
    message = parse(raw)
    assert message.message_id.startswith("<")
    assert isinstance(message.text, str)


def test_unknown_charset_is_recorded_and_text_kept() -> None:
    message = parse(b"Content-Type: text/plain; charset=x-foo\r\n\r\nhello")
    assert message.text == "hello"
    assert any("x-foo" in defect for defect in message.defects)


def test_missing_message_id_gets_a_stable_generated_one() -> None:
    raw = b"From: a@example.com\r\nSubject: no id\r\n\r\nhello\r\n"
    first, second = parse(raw), parse(raw)
    expected = f"<{hashlib.sha256(raw).hexdigest()[:32]}@mailbot.generated>"
    assert first.message_id == second.message_id == expected
    assert parse(raw + b"more\r\n").message_id != expected


def test_message_id_and_thread_ids_are_normalised() -> None:
    message = parse(
        b"Message-ID:  <abc@example.com> \r\n"
        b"In-Reply-To: <x@example.com> (sent by Bob)\r\n"
        b"References: <a@example.com>\r\n <b@example.com> junk <>\r\n\r\n"
    )
    assert message.message_id == "<abc@example.com>"
    assert message.in_reply_to == ("<x@example.com>",)
    assert message.references == ("<a@example.com>", "<b@example.com>")


def test_bare_message_id_is_wrapped_in_angle_brackets() -> None:
    assert parse(b"Message-ID: abc@example.com\r\n\r\n").message_id == "<abc@example.com>"


def test_subject_is_decoded_unfolded_and_collapsed() -> None:
    message = parse(b"Subject: =?utf-8?q?R=C3=BCckerstattung?=\r\n   bitte\r\n\r\n")
    assert message.subject == "Rückerstattung bitte"


def test_date_is_timezone_aware_or_none() -> None:
    dated = parse(b"Date: Mon, 20 Mar 2017 05:12:54 +0600\r\n\r\n").date
    assert dated == datetime(2017, 3, 20, 5, 12, 54, tzinfo=timezone(timedelta(hours=6)))
    unknown_zone = parse(b"Date: Mon, 20 Mar 2017 05:12:54 -0000\r\n\r\n").date
    assert unknown_zone == datetime(2017, 3, 20, 5, 12, 54, tzinfo=UTC)
    assert parse(b"Date: yesterday\r\n\r\n").date is None


def test_headers_are_kept_decoded_and_in_order() -> None:
    message = parse(b"X-B: 2\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nX-A: 1\r\n\r\n")
    assert message.headers == (("X-B", "2"), ("Subject", "café"), ("X-A", "1"))
    assert message.header("x-a") == "1"


def attachment_named(filename_parameter: str, content_type: str = "application/pdf") -> str:
    raw = (
        'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        "--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        f"--XX\r\nContent-Type: {content_type}\r\n"
        f"Content-Disposition: attachment; {filename_parameter}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX--\r\n"
    ).encode()
    [attachment] = parse(raw).attachments
    assert attachment.payload == b"hello"
    return attachment.filename


def test_attachment_path_is_reduced_to_its_basename() -> None:
    assert attachment_named('filename="../../etc/passwd"') == "passwd"
    assert attachment_named('filename="..\\\\..\\\\boot.ini"') == "boot.ini"
    assert attachment_named('filename="C:\\\\Windows\\\\evil.exe"') == "evil.exe"


def test_empty_attachment_name_falls_back_to_numbered_name_with_extension() -> None:
    assert attachment_named('filename=""') == "attachment-1.pdf"
    assert attachment_named('filename="   "', "image/png") == "attachment-1.png"


def test_attachment_name_loses_control_characters_and_shell_specials() -> None:
    assert attachment_named("filename*=utf-8''bad%07na%0Ame%00.txt") == "badname.txt"
    assert attachment_named('filename="a;b|c$(d).txt"') == "abcd.txt"
    assert attachment_named('filename="Beschwerde Müller.pdf"') == "Beschwerde Müller.pdf"


def test_attachment_name_is_never_dot_or_dotdot_or_hidden() -> None:
    assert attachment_named('filename="..."') == "attachment-1.pdf"
    assert attachment_named('filename=".."') == "attachment-1.pdf"
    assert attachment_named('filename="."') == "attachment-1.pdf"
    assert attachment_named('filename=".bashrc"') == "bashrc"


def test_attachment_name_is_at_most_100_chars() -> None:
    name = attachment_named(f'filename="{"x" * 300}.pdf"')
    assert name == "x" * 96 + ".pdf"


def test_inline_image_without_name_is_an_attachment() -> None:
    [image] = parse_corpus_mail("mail_test_14").attachments
    assert (image.filename, image.content_type) == ("attachment-1.png", "image/png")


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert parse(raw).message_id.startswith("<")


SMALL_BROKEN_MAILS = ("mail_malformed_2", "mail_test_12", "mail_test_17", "mail_test_3")


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(SMALL_BROKEN_MAILS), st.integers(min_value=0), st.binary(max_size=40))
def test_real_mail_cut_anywhere_and_spliced_with_junk_never_raises(
    name: str, cut: int, junk: bytes
) -> None:
    raw = (corpus_dir() / MAIL_PARSER_MAILS / name).read_bytes()
    cut %= len(raw) + 1
    parse(raw[:cut] + junk + raw[cut:][len(junk) :])


def test_binary_labelled_text_is_kept_as_an_attachment_not_read_as_the_body() -> None:
    payload = b"\xd0\xcf\x11\xe0" + b"\x00\x01word\x00\x00" * 50
    raw = (
        b"From: Ann <ann@example.com>\r\nContent-Type: text/plain; charset=latin-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + payload
    )
    message = parse(raw)
    assert message.text == ""
    [attachment] = message.attachments
    assert attachment.payload.rstrip(b"\r\n") == payload
    assert attachment.content_type == "application/octet-stream"
    assert any("binary data" in defect for defect in message.defects)


def test_a_stray_nul_in_real_text_keeps_the_text() -> None:
    text = "My router keeps dropping the line.\x00 " + "It happens every evening. " * 8
    raw = b"From: Ann <ann@example.com>\r\n\r\n" + text.encode()
    assert parse(raw).text == text
