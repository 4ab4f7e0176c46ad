"""Outlook's own containers: winmail.dat (TNEF) and .msg items, read for their files and text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailbot.mail import charsets
from mailbot.mail.html_text import html_to_text

if TYPE_CHECKING:
    import olefile

# tnefparse, olefile, compressed_rtf and striprtf are imported when an Outlook container
# comes: few messages hold one, and a daemon that never meets one keeps their memory

TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"  # 0x223E9F78, little-endian (MS-OXTNEF 2.1.3.1)
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a compound file (MS-CFB), as .msg is


@dataclass(frozen=True)
class Winmail:
    """What a winmail.dat carries: the message's files, and its body as text."""

    files: tuple[tuple[str, bytes], ...]  # (file name, bytes)
    text: str


@dataclass(frozen=True)
class OutlookItem:
    """An Outlook item saved as a .msg file: its subject and its text."""

    subject: str
    text: str


def read_winmail(data: bytes, defects: list[str]) -> Winmail | None:
    """DATA's files and body if it is a TNEF stream, else None."""
    if not data.startswith(TNEF_SIGNATURE):
        return None
    if not _cheap_to_read(data):
        defects.append("winmail.dat of too many attributes for its size: kept as it is")
        return None
    try:
        import tnefparse

        # Checksums only warn in tnefparse; a bad one costs nothing the bytes still hold.
        tnef = tnefparse.TNEF(data, do_checksum=False)
        files = tuple(
            (_text_of(item.long_filename(), tnef.codepage), bytes(item.data))
            for item in tnef.attachments
        )
    except Exception as exc:  # a broken winmail.dat stays an attachment, as received
        defects.append(f"winmail.dat unreadable: {type(exc).__name__}")
        return None
    try:
        text = _body(tnef.body, tnef.htmlbody, tnef.rtfbody, tnef.codepage)
    except Exception as exc:  # its files are still worth having
        defects.append(f"winmail.dat body unreadable: {type(exc).__name__}")
        text = ""
    return Winmail(files, text)


# tnefparse copies the rest of the stream for each attribute it reads: a stream of many
# tiny attributes costs the square of its size (a crafted 25 MB one, hours). Real ones
# hold a few dozen attributes, a few more for each attached file.
_COPY_BUDGET = 2**33  # bytes copied, about a second


def _cheap_to_read(data: bytes) -> bool:
    """Whether tnefparse copies at most _COPY_BUDGET bytes reading DATA."""
    offset, copied = 6, 0
    while offset + 12 < len(data):  # tnefparse's own loop: level, id, length, data, sum
        copied += len(data) - offset
        if copied > _COPY_BUDGET:
            return False
        offset += min(
            len(data) - offset, int.from_bytes(data[offset + 5 : offset + 9], "little") + 11
        )
    return True


def read_outlook_item(data: bytes, defects: list[str]) -> OutlookItem | None:
    """The subject and text of DATA if it is an Outlook item (.msg), else None."""
    if not data.startswith(OLE_SIGNATURE):
        return None
    try:
        import olefile

        with olefile.OleFileIO(data) as item:
            if not item.exists("__properties_version1.0"):
                return None  # another compound file: a Word or Excel document
            subject = _property(item, 0x0037) or ""
            plain, html = _property(item, 0x1000), _property(item, 0x1013)
            text = _body(plain, html, _rtf(_property(item, 0x1009, binary=True)), None)
    except Exception as exc:  # a broken .msg stays an attachment, as received
        defects.append(f"Outlook item unreadable: {type(exc).__name__}")
        return None
    return OutlookItem(_text_of(subject, None).strip(), text)


def _body(plain: object, html: object, rtf: object, codepage: str | None) -> str:
    """The body as text: the plain one, else the HTML one, else the RTF one."""
    if text := _text_of(plain, codepage).strip("\x00").strip():
        return text
    if text := html_to_text(_text_of(html, codepage)):
        return text
    if isinstance(rtf, bytes) and rtf:
        from striprtf.striprtf import rtf_to_text

        # RTF is 7-bit with \'xx escapes for its own code page (\ansicpg), which striprtf
        # follows; striprtf's function has no annotations
        rtf_text = rtf.decode("cp1252", errors="replace")
        return str(rtf_to_text(rtf_text, errors="ignore")).strip()  # type: ignore[no-untyped-call]
    return ""


def _text_of(value: object, codepage: str | None) -> str:
    """A MAPI value as text: tnefparse hands strings, bytes, or a list of either."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = charsets.decode(value.rstrip(b"\x00"), codepage, [])
    return str(value or "").strip("\x00")


def _property(item: olefile.OleFileIO, tag: int, *, binary: bool = False) -> str | bytes | None:
    """Property TAG of a .msg (MS-OXMSG 2.1.3): Unicode, 8-bit, or binary."""
    kinds = ("0102",) if binary else ("001F", "001E", "0102")
    for kind in kinds:
        stream = f"__substg1.0_{tag:04X}{kind}"
        if item.exists(stream):
            data = item.openstream(stream).read()
            if kind == "001F":
                return bytes(data).decode("utf-16-le", errors="replace").rstrip("\x00")
            if kind == "001E":
                return charsets.decode(bytes(data).rstrip(b"\x00"), None, [])
            return bytes(data)
    return None


def _rtf(compressed: object) -> bytes | None:
    """PR_RTF_COMPRESSED as RTF (MS-OXRTFCP)."""
    if not isinstance(compressed, bytes) or not compressed:
        return None
    import compressed_rtf

    rtf: bytes = compressed_rtf.decompress(compressed)
    return rtf
