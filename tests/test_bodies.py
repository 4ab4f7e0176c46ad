"""Reading bodies as their senders meant them: charsets, HTML, every text part, file names."""

from __future__ import annotations

import hashlib

from mailbot.mail.parse import ParsedMessage, parse_message
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
