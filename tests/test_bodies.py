"""Reading bodies as their senders meant them: charsets, HTML, every text part, file names."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inscriptis.model.canvas.block import Block
from inscriptis.model.canvas.prefix import Prefix

from mailbot.mail import html_text
from mailbot.mail.parse import ParsedMessage, parse_message
from mailbot.mail.trim import trim_reply
from tests.corpus import corpus_dir

MAIL_PARSER_MAILS = "mail-parser/tests/mails"
HEAD = "From: Ann Customer <ann@example.com>\r\nSubject: my complaint\r\nMIME-Version: 1.0\r\n"


def parse(raw: bytes) -> ParsedMessage:
    return parse_message(raw, hashlib.sha256(raw).hexdigest())


def one_part(body: bytes, content_type: str = "text/plain", charset: str | None = None) -> bytes:
    label = f"; charset={charset}" if charset else ""
    return (
        f"{HEAD}Content-Type: {content_type}{label}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body


def multipart(subtype: str, *parts: str) -> bytes:
    body = "".join(f"--XX\r\n{part}\r\n" for part in parts)
    return (
        f'{HEAD}Content-Type: multipart/{subtype}; boundary="XX"\r\n\r\n{body}--XX--\r\n'.encode()
    )


def corpus_mail(name: str) -> ParsedMessage:
    return parse((corpus_dir() / MAIL_PARSER_MAILS / name).read_bytes())


# "お客様各位 ①② ㈱髙橋" as Outlook writes it in ISO-2022-JP (Windows' CP50220): JIS X 0208
# pairs, NEC row 13 (①, ②, ㈱: "-!", '-"', "-j") and an IBM extension (髙, row 92: "|b").
ISO_2022_JP_FROM_OUTLOOK = b'\x1b$B$*5RMM3F0L\x1b(B \x1b$B-!-"\x1b(B \x1b$B-j|b66\x1b(B'


def test_iso_2022_jp_with_nec_and_ibm_extensions_reads_as_outlook_wrote_it() -> None:
    message = parse(one_part(ISO_2022_JP_FROM_OUTLOOK, charset="iso-2022-jp"))
    assert message.text == "お客様各位 ①② ㈱髙橋"


def test_broken_iso_2022_jp_keeps_its_japanese_not_its_escape_sequences() -> None:
    broken = ISO_2022_JP_FROM_OUTLOOK + b" \x1b$(Dxx\x1b(B"  # JIS X 0212: no Windows code page
    text = parse(one_part(broken, charset="iso-2022-jp")).text
    assert text.startswith("お客様各位")
    assert "\x1b" not in text
    assert "$B" not in text


def test_shift_jis_label_reads_the_windows_extensions_its_senders_use() -> None:
    text = "①番の請求書について、返金をお願いします。"
    assert parse(one_part(text.encode("cp932"), charset="shift_jis")).text == text


def test_thai_windows_874_label_is_read_though_python_has_no_such_name() -> None:
    text = "เรียน ฝ่ายบริการลูกค้า อินเทอร์เน็ตใช้งานไม่ได้"
    message = parse(one_part(text.encode("cp874"), charset="windows-874"))
    assert message.text == text
    assert not any("unknown charset" in defect for defect in message.defects)


def test_a_part_whose_declared_utf_8_is_really_windows_1252_is_detected() -> None:
    text = (
        "Dear Sir, the engineer never came on Tuesday. I want my £25 back — "
        "and an apology. José Müller, Café Crème, Leeds"
    )
    message = parse(one_part(text.encode("cp1252"), charset="utf-8"))
    assert message.text == text
    assert any("detected cp1252" in defect for defect in message.defects)


def test_an_undeclared_cyrillic_part_is_detected_not_replaced() -> None:
    text = "Здравствуйте! Интернет не работает уже неделю, прошу вернуть деньги за месяц."
    assert parse(one_part(text.encode("cp1251"))).text == text


HTML_COMPLAINT = (
    "<html><head><style>p {margin: 0}</style></head><body>"
    "<p>The <b>Caf&eacute;</b> router costs &pound;25 &mdash; it <i>never</i> worked.</p>"
    "<p>Line one<br>line two</p>"
    '<p>Please read <a href="https://shop.example/terms">your terms</a> again, or mail '
    '<a href="mailto:ann@example.com">ann@example.com</a>.</p>'
    "<p>-- not a signature, a dash<br>-- <br>Ann Customer<br>Flat 2, Leeds</p>"
    "</body></html>"
)


def test_html_only_mail_becomes_clean_text() -> None:
    text = parse(one_part(HTML_COMPLAINT.encode(), "text/html", "utf-8")).text
    assert text == (
        "The Café router costs £25 — it never worked.\n"
        "\n"
        "Line one\n"
        "line two\n"
        "\n"
        "Please read your terms (https://shop.example/terms) again, or mail ann@example.com.\n"
        "\n"
        "-- not a signature, a dash\n"
        "-- \n"
        "Ann Customer\n"
        "Flat 2, Leeds"
    )


# text as HTML carries it: words, every kind of white space, entities, and nothing at all
_HTML_TEXT = st.lists(
    st.sampled_from([*"ab ,\n\t\r\xa0\u2003\x1c", "&amp;", "&lt"]), max_size=12
).map("".join)


@given(
    pieces=st.lists(_HTML_TEXT, max_size=6),
    collapsed=st.booleans(),
    padding=st.integers(0, 3),
)
def test_html_text_is_merged_into_a_line_as_inscriptis_merges_it(
    pieces: list[str], collapsed: bool, padding: int
) -> None:
    """html_text's merge_normal_text, a run at a time, writes what inscriptis' own does."""
    blocks = []
    for merge in (html_text.INSCRIPTIS_MERGE_NORMAL_TEXT, html_text.merge_normal_text):
        prefix = Prefix()
        prefix.register_prefix(padding, "* " if padding > 1 else "")
        block = Block(0, prefix)
        block.collapsable_whitespace = collapsed
        for piece in pieces:
            merge(block, piece)
        blocks.append((block._content, block.idx, block.collapsable_whitespace, prefix.consumed))
    assert blocks[0] == blocks[1]


def test_an_html_signature_is_still_found_by_the_trimmer() -> None:
    html = "<div>Refund sent today.</div><div><br></div><div>-- <br>Sam Staff<br>Complaints</div>"
    text = parse(one_part(html.encode(), "text/html", "utf-8")).text
    assert trim_reply(text) == "Refund sent today."


@pytest.mark.parametrize("name", ["mail_test_1", "mail_test_4", "mail_test_6", "mail_test_9"])
def test_html_only_corpus_mail_reads_without_markdown_or_entities(name: str) -> None:
    text = corpus_mail(name).text
    assert text.strip()
    assert not re.search(r"\*\*|\\[-*_#.]|\]\(|  $|&[a-z]+;|&#\d+;", text, re.MULTILINE)


def test_every_text_part_of_a_mixed_message_is_kept_in_order() -> None:
    raw = multipart(
        "mixed",
        "Content-Type: text/plain\r\n\r\nFirst, the router.",
        "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=",
        "Content-Type: text/plain\r\n\r\nSecond, the bill.",
        "Content-Type: text/html\r\n\r\n<p>Third, the engineer.</p>",
    )
    assert parse(raw).text == "First, the router.\n\nSecond, the bill.\n\nThird, the engineer."


def test_of_alternatives_the_plain_one_is_read_and_the_rest_of_the_mail_too() -> None:
    alternative = (
        'Content-Type: multipart/alternative; boundary="YY"\r\n\r\n'
        "--YY\r\nContent-Type: text/plain\r\n\r\nMy line is down.\r\n"
        "--YY\r\nContent-Type: text/html\r\n\r\n<p>My <b>line</b> is down.</p>\r\n--YY--"
    )
    footer = "Content-Type: text/html\r\n\r\n<p>Sent from the Leeds office</p>"
    assert parse(multipart("mixed", alternative, footer)).text == (
        "My line is down.\n\nSent from the Leeds office"
    )


def test_an_empty_plain_alternative_gives_way_to_the_html() -> None:
    alternative = (
        'Content-Type: multipart/alternative; boundary="YY"\r\n\r\n'
        "--YY\r\nContent-Type: text/plain\r\n\r\n \r\n"
        "--YY\r\nContent-Type: text/html\r\n\r\n<p>Only the HTML says it: refund me.</p>\r\n--YY--"
    )
    postscript = "Content-Type: text/plain\r\n\r\nPS: account 12345678"
    assert parse(multipart("mixed", alternative, postscript)).text == (
        "Only the HTML says it: refund me.\n\nPS: account 12345678"
    )


def test_corpus_mail_keeps_its_html_body_and_its_plain_footer() -> None:
    # mail_test_14: multipart/mixed of text/html, an image, then text/plain
    assert corpus_mail("mail_test_14").text == "HTML here\n\nPlaintext here."


def test_a_nameless_inline_image_is_named_by_its_content_id() -> None:
    raw = multipart(
        "related",
        "Content-Type: text/html\r\n\r\n<p>See the photo</p>",
        "Content-Type: image/png\r\nContent-ID: <image001.png@01D9C2F1.5A1B2C30>\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=",
        "Content-Type: image/jpeg\r\nContent-ID: <part2.06090408.01060107@example.com>\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=",
    )
    names = [attachment.filename for attachment in parse(raw).attachments]
    assert names == ["image001.png", "part2.06090408.01060107.jpg"]


def test_an_attached_message_without_a_name_is_named_by_its_subject() -> None:
    inner = (
        "From: Shop <care@shop.example>\r\nSubject: Re: [CMP-2026-000001] Refund 12/2026\r\n"
        "\r\nWe will refund you.\r\n"
    )
    raw = multipart(
        "mixed",
        "Content-Type: text/plain\r\n\r\nHere is what they told me.",
        f"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n{inner}",
    )
    [attached] = parse(raw).attachments
    assert attached.filename == "Re CMP-2026-000001 Refund 12-2026.eml"
    assert b"We will refund you." in attached.payload


def test_two_attachments_with_the_same_name_are_made_unique() -> None:
    def scan(name: str) -> str:
        return (
            f'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="{name}"'
            "\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8="
        )

    raw = multipart(
        "mixed", scan("scan.pdf"), scan("scan.pdf"), scan("Scan.PDF"), scan("scan-2.pdf")
    )
    names = [attachment.filename for attachment in parse(raw).attachments]
    assert names == ["scan.pdf", "scan-2.pdf", "Scan-3.PDF", "scan-2-2.pdf"]


TNEF_SAMPLES = Path(__file__).parent / "data" / "tnefparse"


def winmail(sample: str, body: str | None) -> bytes:
    """A mail as Outlook sends it through Exchange: maybe a text part, then winmail.dat."""
    data = base64.encodebytes((TNEF_SAMPLES / sample).read_bytes()).decode()
    tnef = (
        'Content-Type: application/ms-tnef; name="winmail.dat"\r\n'
        'Content-Disposition: attachment; filename="winmail.dat"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{data}"
    )
    parts = [f"Content-Type: text/plain\r\n\r\n{body}", tnef] if body else [tnef]
    return multipart("mixed", *parts)


def test_the_files_inside_winmail_dat_become_the_messages_attachments() -> None:
    message = parse(winmail("two-files.tnef", "The two files are attached."))
    assert message.text == "The two files are attached."
    assert [(a.filename, a.content_type) for a in message.attachments] == [
        ("AUTHORS", "application/octet-stream"),
        ("README", "application/octet-stream"),
    ]
    assert b"TNEF is a program for unpacking" in message.attachments[1].payload


def test_a_body_carried_only_in_winmail_dat_becomes_the_text() -> None:
    message = parse(winmail("rtf.tnef", None))
    assert "Greg Allen\nSenior Engineer" in message.text
    assert "\\par" not in message.text
    assert "{\\rtf" not in message.text
    assert message.attachments == ()


def test_an_attached_outlook_item_is_kept_and_its_text_read_as_quoted() -> None:
    item = (corpus_dir() / MAIL_PARSER_MAILS / "mail_outlook_1").read_bytes()  # a .msg file
    raw = multipart(
        "mixed",
        "Content-Type: text/plain\r\n\r\nThis is the newsletter I never signed up for.",
        'Content-Type: application/vnd.ms-outlook; name="newsletter.msg"\r\n'
        'Content-Disposition: attachment; filename="newsletter.msg"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64.encodebytes(item).decode()}",
    )
    message = parse(raw)
    [attachment] = message.attachments
    assert (attachment.filename, attachment.payload) == ("newsletter.msg", item)
    own, _, quoted = message.text.partition("\n\n-----Original Message-----\n")
    assert own == "This is the newsletter I never signed up for."
    assert quoted.startswith("Subject: Newsletter Prüfung Personalwesen")
    assert "Sehr geehrte Frau Gaiser-Schönenborn" in quoted
    assert trim_reply(message.text) == own


def test_a_winmail_dat_crafted_of_tiny_attributes_is_kept_as_it_is() -> None:
    # 100,000 one-byte attributes: tnefparse would copy 60 GB reading them
    tiny = struct.pack("<BHHI", 1, 0x9999, 6, 1) + b"x" + struct.pack("<H", ord("x"))
    crafted = struct.pack("<IH", 0x223E9F78, 1) + tiny * 100_000
    raw = multipart(
        "mixed",
        "Content-Type: text/plain\r\n\r\nSee attached.",
        "Content-Type: application/ms-tnef\r\n"
        'Content-Disposition: attachment; filename="winmail.dat"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64.encodebytes(crafted).decode()}",
    )
    message = parse(raw)
    [kept] = message.attachments
    assert (kept.filename, kept.payload) == ("winmail.dat", crafted)
    assert any("too many attributes" in defect for defect in message.defects)
