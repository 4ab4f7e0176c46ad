"""Raw RFC 822 bytes -> ParsedMessage, with mail-parser and a standard-library fallback."""

from __future__ import annotations

import email
import email.policy
import email.utils
import functools
import mimetypes
import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser

import mailparser

from mailbot.mail import charsets, outlook
from mailbot.mail.html_text import html_to_text


@dataclass(frozen=True)
class Address:
    """One mailbox: display name and lower-cased addr-spec."""

    name: str
    email: str


@dataclass(frozen=True)
class Attachment:
    """One attachment, with a file name safe to use under a directory of ours."""

    filename: str
    content_type: str
    payload: bytes


@dataclass(frozen=True)
class ParsedMessage:
    """Everything mailbot reads from one message."""

    message_id: str  # "<...>", generated from the SHA-256 when the header is missing
    subject: str
    sender: Address | None  # From:, else Sender:, Reply-To:, Return-Path: (see sender_header)
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    in_reply_to: tuple[str, ...]  # "<...>" ids
    references: tuple[str, ...]  # "<...>" ids, oldest first
    date: datetime | None  # the sender's Date: header (not trusted for deadlines)
    text: str  # text body; HTML-only mail turned into readable text
    attachments: tuple[Attachment, ...]
    content_type: str  # top-level, lower case, e.g. "multipart/report"
    headers: tuple[tuple[str, str], ...]  # every header, decoded, in order
    parser: str  # "mail-parser" or "email" (the fallback)
    defects: tuple[str, ...] = field(default=())
    sender_header: str = ""  # the header the sender came from: "From", "Sender", ... or ""

    def header(self, name: str) -> str | None:
        """The first value of header NAME (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


def parse_message(raw: bytes, fingerprint: str) -> ParsedMessage:
    """Parse RAW; never raises on malformed input (raises only on non-bytes)."""
    return parse_message_tree(raw, fingerprint)[0]


def parse_message_tree(raw: bytes, fingerprint: str) -> tuple[ParsedMessage, Message | None]:
    """parse_message, with mail-parser's tree of the message (the standard library's
    compat32 Message) for a reader that would parse it so again; None if it failed."""
    if not isinstance(raw, bytes | bytearray):
        raise TypeError(f"parse_message needs bytes, not {type(raw).__name__}")
    defects: list[str] = []
    raw = repair_header_block(bytes(raw), defects)  # what is stored stays as received
    try:
        parsed = _Tree.from_bytes(raw)
        found = [f"mail-parser: {name}" for name in sorted(parsed.defects_categories)]
        extracted = _extract(parsed.message, fingerprint, "mail-parser", defects + found)
        return extracted, parsed.message
    except Exception as exc:  # mail-parser trips over some broken MIME; the mailbox must go on
        defects.append(f"mail-parser failed: {type(exc).__name__}: {exc}")
    for policy in (email.policy.default, email.policy.compat32):
        try:
            message = BytesParser(policy=policy).parsebytes(raw)
            found = [f"email: {type(defect).__name__}" for defect in message.defects]
            return _extract(message, fingerprint, "email", defects + found), None
        except Exception as exc:
            defects.append(f"email ({policy!r}) failed: {type(exc).__name__}: {exc}")
    return _unreadable(fingerprint, defects), None


class _Tree(mailparser.MailParser):  # type: ignore[misc]  # mail-parser is untyped
    """mail-parser's tree of the message, parsed with its guard (a message nested too deep
    is its MailParserRecursionError) and with its defect categories, but without its walk
    that decodes every part and attachment: _extract reads the parts, once (0.7 ms a
    message, a fifth of reading one). Nor its header diagnostics (_reset: the addresses,
    dates and every Received header parsed again, 0.3 ms a message): _extract reads From,
    To, Cc, Reply-To and Date itself, with its own defects, and a relay's Received line
    says nothing about the complaint."""

    def parse(self) -> _Tree:
        self._defects: list[dict[str, list[str]]] = []
        self._defects_categories: set[str] = set()
        self._has_defects = False
        for part in self.message.walk() if self.message is not None else ():
            self._append_defects(part, part.get_content_type())
        return self


def _unreadable(fingerprint: str, defects: list[str]) -> ParsedMessage:
    return ParsedMessage(
        message_id=generated_message_id(fingerprint),
        subject="",
        sender=None,
        to=(),
        cc=(),
        reply_to=(),
        in_reply_to=(),
        references=(),
        date=None,
        text="",
        attachments=(),
        content_type="text/plain",
        headers=(),
        parser="email",
        defects=tuple(defects),
    )


def _extract(message: Message, fingerprint: str, parser: str, defects: list[str]) -> ParsedMessage:
    declared = _declared_charsets(message)
    raw_headers = [(str(name), _unfold(value, declared)) for name, value in message.raw_items()]
    headers = tuple((name, _decode_words(value, defects, declared)) for name, value in raw_headers)

    def raw_header(name: str) -> str:
        return next((value for key, value in raw_headers if key.lower() == name), "")

    text, attachments = _body(message, defects)
    # each header's mailboxes read once: the sender is looked for in From, then Reply-To ...
    addresses = functools.cache(lambda value: _addresses(value, defects, declared))
    sender, sender_header = _sender(raw_headers, addresses)
    if sender_header not in ("", "From"):
        defects.append(f"sender taken from {sender_header}")
    return ParsedMessage(
        message_id=_message_id(raw_header("message-id"), fingerprint),
        subject=" ".join(_decode_words(raw_header("subject"), defects, declared).split()),
        sender=sender,
        to=addresses(raw_header("to")),
        cc=addresses(raw_header("cc")),
        reply_to=addresses(raw_header("reply-to")),
        in_reply_to=_ids(raw_header("in-reply-to")),
        references=_ids(raw_header("references")),
        date=_date(raw_header("date"), defects),
        text=text,
        attachments=tuple(attachments),
        content_type=message.get_content_type().lower(),
        headers=headers,
        parser=parser,
        defects=tuple(defects),
        sender_header=sender_header,
    )


@dataclass
class _File:
    """An attachment as found, before it gets a safe name no other attachment has."""

    name: str  # the sender's, or one made from a Content-ID or a Subject; "" for none
    content_type: str
    payload: bytes


@dataclass
class _Found:
    """What the walk over a message's parts found, in the parts' order."""

    texts: list[tuple[str, str]] = field(default_factory=list)  # (content type, text) a part
    carried: list[str] = field(default_factory=list)  # body text carried only in winmail.dat
    files: list[_File] = field(default_factory=list)


def _body(message: Message, defects: list[str]) -> tuple[str, tuple[Attachment, ...]]:
    """The message's text, every text part of it in order, and its attachments."""
    found = _Found()
    _collect(message, found, defects)
    # HTML is turned into text only here, once the alternatives not read are dropped.
    texts = [
        _html_to_text(text, defects) if kind == "text/html" else text for kind, text in found.texts
    ]
    text = "\n\n".join(text for text in texts if text.strip()) or "\n\n".join(found.carried)
    return text, _named(found.files)


def _collect(part: Message, found: _Found, defects: list[str]) -> None:
    """Sort PART's leaves into body text and attachments, depth first."""
    filename = _filename(part)
    disposition = part.get_content_disposition()
    content_type = part.get_content_type().lower()
    if disposition == "attachment" or (filename is not None and not part.is_multipart()):
        name = _decode_words(filename or "", defects) or _made_up_name(part, defects)
        payload = _container_bytes(part, defects) if part.is_multipart() else _payload(part)
        _add_file(found, _File(name, content_type, payload), defects)
        return
    if content_type.startswith("multipart/") and not part.is_multipart():
        reparsed = _with_found_boundary(part, defects)
        if reparsed is not None:
            _collect(reparsed, found, defects)
        return
    if part.is_multipart():
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        _collect_parts(part, children, found, defects)
        for recovered in _parts_in_epilogue(part, defects):
            _collect(recovered, found, defects)
        return
    maintype = part.get_content_maintype().lower()
    if content_type in ("text/plain", "text/html"):
        payload = _payload(part)
        text = _decode_bytes(payload, part.get_content_charset(), defects)
        if _is_binary(text):  # e.g. a Word file labelled text/plain: keep it, don't read it
            defects.append(f"{content_type} part holds binary data: kept as an attachment")
            found.files.append(_File("", "application/octet-stream", payload))
        elif content_type == "text/html":
            found.texts.append((content_type, text))
        elif text.strip():
            found.texts.append((content_type, _lines(text)))
    elif maintype not in ("text", "multipart", "message"):
        file = _File(_made_up_name(part, defects), content_type, _payload(part))
        _add_file(found, file, defects)


def _add_file(found: _Found, file: _File, defects: list[str]) -> None:
    """Keep FILE; an Outlook container gives up what it holds: a winmail.dat its files and
    the body it carries, an Outlook item (.msg) its text, quoted as Outlook quotes one."""
    winmail = outlook.read_winmail(file.payload, defects)
    if winmail is not None and (winmail.files or winmail.text):
        for name, data in winmail.files:
            found.files.append(_File(name, _type_of(name) or "application/octet-stream", data))
        if winmail.text:
            found.carried.append(winmail.text)
        return
    found.files.append(file)
    item = outlook.read_outlook_item(file.payload, defects)
    if item is not None and item.text:
        # the trimmer cuts a staff reply at this line, so an attached item never reaches
        # the customer as part of the reply
        quoted = f"-----Original Message-----\nSubject: {item.subject}\n\n{item.text}"
        found.texts.append(("text/plain", _lines(quoted)))


def _collect_parts(
    parent: Message, parts: list[Message], found: _Found, defects: list[str]
) -> None:
    """A multipart's parts: every one in order, or one of several alternatives."""
    nested = next((i for i, part in enumerate(parts) if _reuses_boundary(part, parent)), None)
    if nested is not None:
        # The parts after a nested multipart that took its parent's boundary are its own.
        defects.append(f"{parts[nested].get_content_type()} reused its parent's boundary")
        _collect_parts(parent, parts[:nested], found, defects)
        _collect_parts(parts[nested], parts[nested + 1 :], found, defects)
    elif parent.get_content_type() == "multipart/alternative":
        _collect_alternative(parts, found, defects)
    else:
        for part in parts:
            _collect(part, found, defects)


def _reuses_boundary(part: Message, parent: Message) -> bool:
    boundary = part.get_boundary()
    return (
        part.get_content_maintype() == "multipart"
        and not part.is_multipart()
        and boundary is not None
        and boundary == parent.get_boundary()
    )


def _collect_alternative(parts: list[Message], found: _Found, defects: list[str]) -> None:
    """Renderings of one text: read the plain one unless it is empty; keep every file."""
    readings = []
    for part in parts:
        reading = _Found()
        _collect(part, reading, defects)
        found.files += reading.files
        found.carried += reading.carried
        if reading.texts:
            readings.append(reading)
    plain = [r for r in readings if all(kind == "text/plain" for kind, _ in r.texts)]
    for reading in (plain or readings)[:1]:
        found.texts += reading.texts


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")


def _made_up_name(part: Message, defects: list[str]) -> str:
    """A name for an attachment without one: from its Content-ID, or the attached
    message's Subject; "" when it has neither (it is numbered then)."""
    content_type = part.get_content_type().lower()
    content_id = _unfold(part.get("content-id", "")).strip().strip("<>").split("@")[0]
    if content_id:
        known = _type_of(content_id) is not None
        return content_id if known else f"{content_id}{_extension(content_type)}"
    inner = part.get_payload()
    if content_type == "message/rfc822" and isinstance(inner, list) and inner:
        first = inner[0]
        headers = list(first.raw_items()) if isinstance(first, Message) else []
        subject = next((str(value) for key, value in headers if key.lower() == "subject"), "")
        subject = " ".join(_decode_words(_unfold(subject), defects).split())
        if subject:
            return _SLASHES.sub("-", subject) + ".eml"  # "Refund 12/2026", not "2026"
    return ""


_SLASHES = re.compile(r"[/\\]")


def _named(files: list[_File]) -> tuple[Attachment, ...]:
    """Each attachment under a safe name that no other attachment of the message has."""
    taken: set[str] = set()
    named = []
    for number, file in enumerate(files, start=1):
        name = _unique(_safe_filename(file.name, number, file.content_type), taken)
        taken.add(name.casefold())
        named.append(Attachment(name, file.content_type, file.payload))
    return tuple(named)


def _unique(name: str, taken: set[str]) -> str:
    """NAME, or NAME-2, NAME-3 ... (before its extension) when that is taken."""
    if name.casefold() not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        stem, ext = name, ""
    else:
        ext = f".{ext}"
    copy = 2
    while True:
        suffix = f"-{copy}{ext}"
        candidate = stem[: _MAX_NAME - len(suffix)].rstrip(" ") + suffix
        if candidate.casefold() not in taken:
            return candidate
        copy += 1


def _is_binary(text: str) -> bool:
    """NUL is never text (RFC 5322 2.3); a stray one is noise, one in a hundred is a file."""
    return text.count("\x00") * 100 > len(text)


def _filename(part: Message) -> str | None:
    # The parsers turn raw 8-bit bytes in a file name into U+FFFD; re-read the raw header.
    fields = [
        (name, _unfold(value))
        for name, value in part.raw_items()
        if name.lower() in ("content-disposition", "content-type")
    ]
    if not any("name" in value.lower() for _, value in fields):
        return None  # no (file)name parameter: most parts, spared a Message and its parsing
    scratch = Message()
    for name, value in fields:
        scratch[name] = value
    return scratch.get_filename()


def _parts_in_epilogue(part: Message, defects: list[str]) -> list[Message]:
    # A nested multipart that reuses its parent's boundary closes the parent
    # early, leaving later parts (often the attachment) in the epilogue.
    boundary = part.get_boundary()
    epilogue = part.epilogue
    if not boundary or not epilogue or f"--{boundary}" not in epilogue:
        return []
    recovered = []
    for chunk in epilogue.split(f"--{boundary}")[1:]:
        if chunk.startswith("--") or not chunk.strip():
            continue
        recovered.append(email.message_from_string(chunk.lstrip("\r\n")))
    if recovered:
        defects.append(f"recovered {len(recovered)} part(s) from a multipart epilogue")
    return recovered


def _with_found_boundary(part: Message, defects: list[str]) -> Message | None:
    """Re-read a multipart whose declared boundary never appears, using the one that does."""
    body = part.get_payload()
    if not isinstance(body, str):
        return None
    first = next((line for line in body.splitlines() if line.startswith("--")), "")
    boundary = first[2:].strip()
    if not boundary or boundary == part.get_boundary():
        return None
    header = f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\n\n'
    reparsed = email.message_from_string(header + body)
    if not reparsed.is_multipart():
        return None
    defects.append(f"multipart boundary {part.get_boundary()!r} missing; used {boundary!r}")
    return reparsed


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _container_bytes(part: Message, defects: list[str]) -> bytes:
    """The body of an attached message/rfc822 (or similar container) as bytes."""
    chunks = []
    for child in part.get_payload():
        try:
            chunks.append(child.as_bytes() if isinstance(child, Message) else str(child).encode())
        except Exception as exc:  # a broken inner message must not lose the outer one
            defects.append(f"attached message not serialisable: {type(exc).__name__}")
    return b"".join(chunks)


def _decode_bytes(data: bytes, charset: str | None, defects: list[str]) -> str:
    """Decode DATA, trusting CHARSET only as far as it works; never raises."""
    return charsets.decode(data, charset, defects)


# The parsers smuggle undecodable header bytes through as these surrogates.
_SMUGGLED_BYTE = re.compile("[\udc80-\udcff]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _unfold(value: object, declared: Sequence[str] = ()) -> str:
    """Header value as text: folding removed, raw 8-bit bytes decoded (see _header_text)."""
    text = str(value)
    if _SMUGGLED_BYTE.search(text):  # one scan in C, not a Python step per character
        text = _header_text(text.encode("utf-8", "surrogateescape"), declared, [])
    text = _FOLD.sub("", text)
    return text.replace("\r", " ").replace("\n", " ").strip()


def _decode_words(value: str, defects: list[str], declared: Sequence[str] = ()) -> str:
    """Decode RFC 2047 encoded words in VALUE, whatever their charset claims.

    DECLARED are the charsets the message declares elsewhere, tried after a word's own.
    """
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception as exc:
        defects.append(f"undecodable header words: {type(exc).__name__}")
        return value
    text = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            text.append(chunk)
        elif charset is None:
            # decode_header hands back the unencoded stretches this way.
            text.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            text.append(_header_text(chunk, (charset, *declared), defects))
    return "".join(text).replace("\r", "").replace("\n", "")


# Charsets mail clients write headers in: the detector picks among these only, as on a few
# bytes it would otherwise find EBCDIC or UTF-16 as likely as anything.
_MAIL_CHARSETS = [
    "cp1252", "cp1250", "cp1251", "koi8_r", "cp1253", "cp1254", "cp1255", "cp1256",
    "cp1257", "cp874", "gb18030", "big5", "shift_jis", "euc_jp", "euc_kr",
]  # fmt: skip
_HIGH_RUN = re.compile(rb"[\x80-\xff]{2,}")


def _header_text(data: bytes, declared: Sequence[str], defects: list[str]) -> str:
    """Header bytes as text, never raising, U+FFFD only when nothing reads them.

    Valid UTF-8 first (a legacy charset decodes almost any bytes, UTF-8 by chance almost
    never), then the DECLARED charsets, then Windows-1252 if the 8-bit bytes stand alone
    (accented letters among ASCII: Western text), then a detector (runs of 8-bit bytes:
    Cyrillic, Chinese, Japanese ...), then Windows-1252 with replacement.
    """
    if not data.isascii():
        with suppress(UnicodeDecodeError):
            return data.decode("utf-8")
    for label in declared:
        codec = charsets.codec_for(label)
        if codec is not None:
            with suppress(UnicodeDecodeError):
                return data.decode(codec)
    if data.isascii():
        return data.decode("ascii")
    if _HIGH_RUN.search(data) is None:
        with suppress(UnicodeDecodeError):
            return data.decode("cp1252")
    import charset_normalizer  # only for header bytes no charset reads: rare

    guess = charset_normalizer.from_bytes(data, cp_isolation=_MAIL_CHARSETS).best()
    if guess is not None:
        defects.append(
            f"header bytes not {'/'.join(declared) or 'UTF-8'}: read as {guess.encoding}"
        )
        return str(guess)
    defects.append("undecodable header bytes: replaced")
    return data.decode("cp1252", errors="replace")


def _declared_charsets(message: Message) -> tuple[str, ...]:
    """The charsets MESSAGE declares for its parts: raw 8-bit headers are usually in them."""
    try:
        found = [c for c in message.get_charsets() if c and c.lower() not in ("us-ascii", "utf-8")]
    except Exception:  # a broken part's parameters must not lose the headers
        return ()
    return tuple(dict.fromkeys(found))


# A line the parsers take for a header field: a name and a colon, or a continuation.
_FIELD_LINE = re.compile(rb"^(From |[\x21-\x39\x3b-\x7e]*:|[ \t])")
# A field mail systems write: one after a line without a colon shows the line is in the header.
_KNOWN_FIELD = re.compile(
    rb"^((x|content|list|resent|arc|thread)-[\x21-\x39\x3b-\x7e]+|from|to|cc|subject|date"
    rb"|message-id|in-reply-to|references|reply-to|sender|return-path|received|delivered-to"
    rb"|mime-version|importance|priority|precedence|auto-submitted|user-agent|organization"
    rb"|errors-to|dkim-signature|authentication-results|received-spf|x-mailer)[ \t]*:",
    re.IGNORECASE,
)
_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")


def split_header_block(raw: bytes) -> tuple[bytes, bytes] | None:
    """RAW cut at the blank line that ends its header block: (headers, body); None when no
    blank line ends it. The one place mailbot finds where a message's headers end."""
    end = _END_OF_HEADER.search(raw)
    return (raw[: end.start()], raw[end.end() :]) if end else None


def header_block(raw: bytes) -> bytes:
    """RAW's header block alone, ended by its blank line (what parse_message needs of a
    message too large to read whole, or one whose reading failed)."""
    cut = split_header_block(raw)
    return (cut[0] if cut else raw[: 64 * 1024]) + b"\r\n\r\n"


def repair_header_block(raw: bytes, defects: list[str]) -> bytes:
    """RAW with header lines folded without leading white space (as some gateways write)
    made continuations again: the parsers would end the header block at the first one.

    A line without a colon counts as such only when a known header field follows it;
    otherwise it is the first line of a body whose blank separator line is missing.
    """
    end = _END_OF_HEADER.search(raw)
    head_end = end.start() if end else len(raw)
    lines = raw[:head_end].split(b"\n")
    broken = [
        number
        for number, line in enumerate(lines)
        if number and line.strip(b"\r") and not _FIELD_LINE.match(line)
    ]
    if not broken:
        return raw
    last_field = max(
        (number for number, line in enumerate(lines) if _KNOWN_FIELD.match(line)), default=0
    )
    repaired = [number for number in broken if number < last_field]
    for number in repaired:
        lines[number] = b" " + lines[number]
    if repaired:
        defects.append(f"header lines {repaired} folded without white space: repaired")
    return b"\n".join(lines) + raw[head_end:]


# A sender is looked for in these, in order (RFC 5322 3.6.2; Return-Path as the last resort).
_SENDER_HEADERS = {
    "from": "From",
    "sender": "Sender",
    "reply-to": "Reply-To",
    "return-path": "Return-Path",
}


def _sender(
    raw_headers: Sequence[tuple[str, str]], addresses: Callable[[str], tuple[Address, ...]]
) -> tuple[Address | None, str]:
    """The first mailbox with an address in every From header, else in Sender, Reply-To,
    Return-Path (a "Name" <> or a junk first From header is passed over); and which header.

    With none, the first From mailbox as it is (a name alone still tells a robot), and "".
    """
    first: Address | None = None
    for header, title in _SENDER_HEADERS.items():
        for key, value in raw_headers:
            if key.lower() != header:
                continue
            for address in addresses(value):
                first = first or (address if title == "From" else None)
                local, _, domain = address.email.rpartition("@")
                if local and domain:
                    name = address.name or (first.name if first else "")
                    return Address(name, address.email), title
    return first, ""


# An unquoted display name holding an "@" ("bob@x <alice@y>") fools getaddresses.
_BARE_AT_NAME = re.compile(r'(^|,)\s*([^,"<>]*@[^,"<>]*?)\s*<')


def _addresses(value: str, defects: list[str], declared: Sequence[str] = ()) -> tuple[Address, ...]:
    if not value:
        return ()
    try:
        pairs = email.utils.getaddresses([_BARE_AT_NAME.sub(r'\1"\2" <', value)])
    except Exception as exc:
        defects.append(f"unparsable address header: {type(exc).__name__}")
        return ()
    if any("=?" in addr for _, addr in pairs):
        # Some senders encode the whole mailbox, addr-spec included.
        return _addresses(_decode_words(value, defects, declared), defects)
    found = []
    for name, addr in pairs:
        if name or addr:
            decoded = _decode_words(name, defects, declared).strip()
            found.append(Address(decoded, addr.strip().lower()))
    return tuple(found)


_ID_TOKEN = re.compile(r"<[^<>]*>")


def _ids(value: str) -> tuple[str, ...]:
    ids = ("".join(token.split()) for token in _ID_TOKEN.findall(value))
    return tuple(token for token in ids if token != "<>")


def _message_id(value: str, fingerprint: str) -> str:
    ids = _ids(value)
    if ids:
        return ids[0]
    bare = "".join(value.split()).strip("<>")
    return f"<{bare}>" if bare else generated_message_id(fingerprint)


def generated_message_id(fingerprint: str) -> str:
    return f"<{fingerprint[:32]}@mailbot.generated>"


def _date(value: str, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except Exception:
        defects.append(f"unparsable Date: {value[:80]!r}")
        return None
    # "-0000" means "zone unknown"; UTC is the least surprising reading.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _html_to_text(html: str, defects: list[str]) -> str:
    try:
        return html_to_text(html)
    except Exception as exc:  # losing the HTML body beats losing the message
        defects.append(f"HTML not readable as text: {type(exc).__name__}")
        return ""


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]")
_MAX_NAME = 100


def _safe_filename(name: str, number: int, content_type: str) -> str:
    """A basename that cannot escape our directory or confuse a shell or a viewer."""
    base = re.split(r"[/\\]", name)[-1]
    kept = "".join(ch for ch in base if ch.isalpha() or not _UNSAFE_NAME_CHARS.match(ch))
    kept = kept.strip(" ").lstrip(".").strip(" ")
    if len(kept) > _MAX_NAME:
        stem, dot, ext = kept.rpartition(".")
        ext = f".{ext}" if dot and 0 < len(ext) <= 10 else ""
        kept = (stem if ext else kept)[: _MAX_NAME - len(ext)].strip(" ") + ext
    if not kept.strip("."):
        kept = f"attachment-{number}{_extension(content_type)}"
    return kept


@functools.cache
def _mime_types() -> mimetypes.MimeTypes:
    # A private table, so the guess does not depend on the host's mime.types.
    return mimetypes.MimeTypes()


def _extension(content_type: str) -> str:
    return _mime_types().guess_extension(content_type) or ""


def _type_of(filename: str) -> str | None:
    return _mime_types().guess_type(filename, strict=False)[0]
