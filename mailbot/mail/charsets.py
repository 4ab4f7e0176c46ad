"""Bytes -> text: the declared charset read as its senders mean it, else detected, else 1252."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

# Labels Python does not know, as the WHATWG Encoding Standard reads them.
_LABELS = {
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859-8",
    "x-sjis": "cp932",
    "x-mac-roman": "mac-roman",
    "x-unicode20utf8": "utf-8",
}

# What a label's senders really write: the superset decodes what the label promised and
# more. Latin-1, Turkish and Thai as Windows' code pages (HTML5's rule); GB2312 and GBK as
# GB18030; Korean, Japanese and Big5 as the Windows and Hong Kong extensions their clients
# use; 8-bit "ASCII" is almost always UTF-8 from a client that never said so.
_SUPERSETS = {
    "ascii": "utf-8",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}

# The charsets mail is written in, for the detector to choose among, the likeliest first.
# Of those that read the bytes with no mess the first is taken: between Latin code pages
# the detector's language guess is no help (it reads Italian as cp1250, short text fits
# any), and Windows-1252 is what most unlabelled 8-bit mail here is.
_MAIL_CHARSETS = (
    "utf_8",
    "cp1252",
    "iso8859_15",
    "cp1250",
    "iso8859_2",
    "cp1251",
    "koi8_r",
    "koi8_u",
    "cp1253",
    "cp1254",
    "cp1255",
    "cp1256",
    "cp1257",
    "cp874",
    "gb18030",
    "big5hkscs",
    "cp932",
    "euc_jp",
    "cp949",
)

Decoder = Callable[[bytes], str]


def decode(data: bytes, charset: str | None, defects: list[str]) -> str:
    """DATA as text: as CHARSET says (read as its superset), else detected; never raises."""
    label = (charset or "").strip().strip("'\"").lower()
    codec = _codec(label, defects)
    for decoder in _decoders(codec):
        try:
            return decoder(data)
        except UnicodeDecodeError:
            continue
    said = label or "no charset"
    if data.isascii():
        # Seven bits that fail their own codec are a broken ISO-2022 stream: keep all it has
        # (UTF-8 would "succeed" and leave the escape sequences as the text).
        stateful = codec and (codec.startswith("iso2022") or codec == "utf-7")
        defects.append(f"bytes not valid {said}; undecodable ones replaced")
        return data.decode(codec if codec and stateful else "ascii", errors="replace")
    try:
        text = data.decode("utf-8")
        defects.append(f"bytes not valid {said}; read as utf-8")
        return text
    except UnicodeDecodeError:
        pass
    found = _detected(data)
    if found is not None:
        name, text = found
        defects.append(f"bytes not valid {said}; detected {name}")
        return text
    defects.append(f"bytes not valid {said}; read as cp1252, undecodable ones replaced")
    return data.decode("cp1252", errors="replace")


def codec_for(label: str) -> str | None:
    """The codec the senders of charset LABEL really write (its superset); None if unknown."""
    name = label.strip().strip("'\"").split("*")[0].lower()  # RFC 2231 "utf-8*en"
    try:
        codec = codecs.lookup(_LABELS.get(name, name)).name
    except LookupError:
        return None
    return _SUPERSETS.get(codec, codec)


def _codec(label: str, defects: list[str]) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(_LABELS.get(label, label)).name
    except LookupError:
        defects.append(f"unknown charset {label!r}")
        return None


def _decoders(codec: str | None) -> list[Decoder]:
    if codec is None:
        return [_strict("utf-8")]
    if codec == "iso2022_jp":
        return [_strict(codec), decode_cp50220]
    return [_strict(_SUPERSETS.get(codec, codec))]


def _strict(codec: str) -> Decoder:
    return lambda data: data.decode(codec)


def _detected(data: bytes) -> tuple[str, str] | None:
    import charset_normalizer  # only for a charset that lies: most mail never loads it

    matches = list(charset_normalizer.from_bytes(data, cp_isolation=list(_MAIL_CHARSETS)))
    if not matches:
        return None
    best = min(matches, key=lambda m: (m.chaos, _MAIL_CHARSETS.index(m.encoding)))
    return best.encoding, str(best)


# ISO-2022-JP's designations (RFC 1468, with JIS X 0201 katakana as Windows writes them).
_DESIGNATION = re.compile(rb"\x1b(\(B|\(J|\(I|\$@|\$B)")


def decode_cp50220(data: bytes) -> str:
    """ISO-2022-JP as Windows writes it (CP50220-50222), NEC and IBM extensions included.

    Outlook and other Windows clients encode from code page 932, whose NEC row 13
    (circled digits, Roman numerals, ㈱) and IBM rows 89-92 (髙, 﨑) Python's ISO-2022-JP
    codecs refuse. Each JIS pair is turned back into its Shift_JIS bytes and read as cp932.
    """
    out = bytearray()
    double = kana = False
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x1B:
            designation = _DESIGNATION.match(data, i)
            if designation is None:
                raise UnicodeDecodeError("cp50220", data, i, i + 1, "unknown escape sequence")
            double = designation.group(1) in (b"$@", b"$B")
            kana = designation.group(1) == b"(I"
            i = designation.end()
        elif byte in (0x0E, 0x0F):  # SO / SI: half-width katakana in and out (CP50222)
            kana = byte == 0x0E
            i += 1
        elif byte >= 0x80:
            raise UnicodeDecodeError("cp50220", data, i, i + 1, "8-bit byte")
        elif double and 0x21 <= byte <= 0x7E:
            if i + 1 >= len(data):
                raise UnicodeDecodeError("cp50220", data, i, i + 1, "truncated pair")
            out += _shift_jis(byte, data[i + 1])
            i += 2
        elif kana and 0x21 <= byte <= 0x5F:
            out.append(byte + 0x80)
            i += 1
        else:
            out.append(byte)
            i += 1
    return out.decode("cp932")


def _shift_jis(first: int, second: int) -> bytes:
    """The Shift_JIS bytes of the JIS X 0208 code FIRST SECOND (rows over 94 included)."""
    lead = (first + 1) // 2 + (0x70 if first < 0x5F else 0xB0)
    if first % 2:
        trail = second + 0x1F
        trail += trail >= 0x7F
    else:
        trail = second + 0x7E
    return bytes((lead, trail))
