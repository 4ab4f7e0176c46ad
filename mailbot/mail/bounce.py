"""Read a bounce (RFC 3464 DSN or an MTA's prose) into failed recipients and returned ids."""

from __future__ import annotations

import email.policy
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient the returned message did not reach."""

    address: str  # lower-case addr-spec
    status: str  # RFC 3463 status such as "5.1.1" when known, else ""
    permanent: bool  # False for delays and other temporary failures


@dataclass(frozen=True)
class BounceReport:
    """What a bounce says: which of our messages came back, and for whom."""

    original_message_ids: tuple[str, ...]  # "<...>" ids of the returned message(s)
    recipients: tuple[FailedRecipient, ...]

    @property
    def permanent(self) -> bool:
        """Whether any recipient failed permanently."""
        return any(recipient.permanent for recipient in self.recipients)


EMPTY_REPORT = BounceReport((), ())


def read_bounce(raw: bytes, message: Message | None = None) -> BounceReport:
    """Read RAW as a bounce; never raises, returns an empty report when nothing is found.
    MESSAGE is RAW already parsed with the compat32 policy (as mail-parser does), if it is."""
    try:
        return _read(bytes(raw), message)
    except Exception:  # a bounce we cannot read must not stop the mailbox
        return EMPTY_REPORT


# --- structure ---------------------------------------------------------------------------


@dataclass
class _Pieces:
    """The parts of a bounce that matter, gathered in one walk."""

    status_groups: list[list[tuple[str, str]]]  # per-recipient DSN fields
    returned_ids: list[str]  # Message-IDs of attached returned messages
    texts: list[str]  # human-readable notification text, in order
    wrapped: list[Message]  # attached messages that are themselves delivery reports
    loose: list[str]  # other report text that may quote the returned headers


_LEAF_LIMIT = 2_000_000  # characters of one text part worth scanning


def _read(raw: bytes, message: Message | None) -> BounceReport:
    if message is None:
        message = BytesParser(policy=email.policy.compat32).parsebytes(raw)
    pieces = _Pieces([], [], [], [], [])
    _walk(message, pieces, depth=0)
    if not pieces.status_groups and pieces.wrapped:
        # A report forwarded whole (a virus scanner's wrapper): read the inner one.
        inner = _Pieces([], [], [], [], [])
        _walk(pieces.wrapped[0], inner, depth=1)
        if inner.status_groups:
            pieces = inner
    text = "\n".join(pieces.texts).replace("\r\n", "\n").replace("\r", "\n")
    notice, returned = _split_returned(text)
    ids = list(dict.fromkeys(pieces.returned_ids))
    if not ids:
        ids = _ids_in_text(returned) or _ids_in_text("\n".join(pieces.loose))
    recipients = _dsn_recipients(pieces.status_groups)
    if not recipients:
        recipients = _text_recipients(notice, _ignored_addresses(message), _domain_of(message))
    return BounceReport(tuple(ids), tuple(recipients))


def _walk(part: Message, pieces: _Pieces, depth: int) -> None:
    if depth > 20:
        return
    content_type = part.get_content_type().lower()
    if content_type in ("message/rfc822", "message/global"):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            if _is_report(inner[0]):
                pieces.wrapped.append(inner[0])
            ids = _header_ids(inner[0].get("Message-ID"))
            body = inner[0].get_payload()
            if not ids and isinstance(body, str):
                # A blank line before the headers leaves them all in the body.
                ids = _ids_in_text(body[:_LEAF_LIMIT])
            pieces.returned_ids.extend(ids)
        elif isinstance(inner, str):
            pieces.returned_ids.extend(_header_ids(HeaderParser().parsestr(inner)["Message-ID"]))
        return  # the returned message's own addresses are not failures
    if content_type.endswith("rfc822-headers"):
        headers = HeaderParser().parsestr(_text_of(part).lstrip("\n"))
        pieces.returned_ids.extend(_header_ids(headers.get("Message-ID")))
        return
    if content_type in ("message/delivery-status", "message/global-delivery-status"):
        pieces.status_groups.extend(_status_groups(part))
        pieces.loose.append(_report_text(part))
        return
    if part.is_multipart():
        children = part.get_payload()
        if isinstance(children, list):
            for child in children:
                if isinstance(child, Message):
                    _walk(child, pieces, depth + 1)
        return
    if content_type == "text/html":
        pieces.texts.append(_html_text(_text_of(part)))
    elif part.get_content_maintype().lower() == "text":
        pieces.texts.append(_text_of(part))


def _report_text(part: Message) -> str:
    """A delivery-status part as text (the parser splits it into header blocks)."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _text_of(part)
    blocks: list[str] = []
    for block in payload:
        if isinstance(block, Message):
            blocks.extend(f"{name}: {_unfold(str(value))}" for name, value in block.items())
    return "\n".join(blocks)


def _is_report(message: Message) -> bool:
    return any(
        part.get_content_type().lower() == "message/delivery-status" for part in message.walk()
    )


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        body = part.get_payload()
        return body[:_LEAF_LIMIT] if isinstance(body, str) else ""
    charset = (part.get_content_charset() or "utf-8").strip('"').lower()
    for candidate in (charset, "utf-8"):
        try:
            return payload[:_LEAF_LIMIT].decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload[:_LEAF_LIMIT].decode("latin-1")


_TAG = re.compile(r"<[^<>]*>")
_BREAK = re.compile(r"<\s*(br|/p|p|/div|/tr|/li)\b[^<>]*>", re.IGNORECASE)


def _html_text(markup: str) -> str:
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", markup)))


# --- RFC 3464 ----------------------------------------------------------------------------


def _status_groups(part: Message) -> Iterator[list[tuple[str, str]]]:
    """The per-recipient field groups of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # The parser reads each blank-line separated group as a headers-only message.
        blocks = [
            [(str(name), _unfold(str(value))) for name, value in block.items()]
            for block in payload
            if isinstance(block, Message)
        ]
    else:
        text = _text_of(part).replace("\r\n", "\n")
        blocks = [
            [(name, _unfold(value)) for name, value in HeaderParser().parsestr(chunk).items()]
            for chunk in re.split(r"\n[ \t]*\n", text.strip("\n"))
        ]
    for block in blocks:
        names = {name.lower() for name, _ in block}
        if names & {"final-recipient", "original-recipient"}:
            yield block


_STATUS = re.compile(r"(?<![\w.])([45])\.(\d{1,3})\.(\d{1,3})(?![\w.])")


def _dsn_recipients(groups: list[list[tuple[str, str]]]) -> list[FailedRecipient]:
    found: dict[str, FailedRecipient] = {}
    for group in groups:
        fields: dict[str, str] = {}
        for name, value in group:
            fields.setdefault(name.lower(), value)
        # Report both: the address we wrote to, and the one the message finally failed at.
        addresses = [
            _dsn_address(fields.get(name, "")) for name in ("original-recipient", "final-recipient")
        ]
        if not any(addresses):
            continue
        action = fields.get("action", "").strip().lower().split(" ")[0]
        if action in ("delivered", "relayed", "expanded"):
            continue
        match = _STATUS.search(fields.get("status", ""))
        status = match.group(0) if match else ""
        if action == "failed":
            permanent = True
        elif action == "delayed":
            permanent = False
        elif match:
            permanent = match.group(1) == "5"
        else:
            diagnostic = fields.get("diagnostic-code", "")
            permanent = _wording_permanent(diagnostic, default=True)
        if not status:
            code = _STATUS.search(fields.get("diagnostic-code", ""))
            status = code.group(0) if code else ""
        for address in dict.fromkeys(filter(None, addresses)):
            _add(found, FailedRecipient(address, status, permanent))
    return list(found.values())


def _dsn_address(value: str) -> str:
    """The addr-spec of "rfc822; <addr>" (the address type is optional in the wild)."""
    _, _, rest = value.rpartition(";")
    match = _ADDRESS.search(rest or value)
    return _clean(match.group(0)) if match else ""


# --- prose bounces -----------------------------------------------------------------------

_ADDRESS = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])"
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24}(?![\w-])",
    re.IGNORECASE,
)
# Where the copy of the returned message starts in a bounce that quotes it as text.
_RETURNED_MARKER = re.compile(
    r"^[ \t>|*=-]*(?:"
    r".*\b(?:below this line is a copy|(?:this|here) is a copy of|a copy of the original message"
    r"|original message (?:follows|as received|below|adjunto|attached)|original message ---"
    r"|-{3,} ?original message ?-{3,}|returned mail follows|returned message"
    r"|message headers? follows?|headers? of the (?:original|source) (?:message|mail)"
    r"|unsent message below|message text follows|your message reads|undelivered message you sent"
    r"|included is a copy|mensaje original|attachment is a copy|lines of your original message"
    r"|top \d+ lines of the message|session transcript ---|old message:|returned mail ---)"
    r"|content-type:\s*(?:message/rfc822|text/rfc822-headers)"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_START = re.compile(r"^>?\s?(?:Received|Return-Path):[ \t]", re.IGNORECASE | re.MULTILINE)
_DAEMONS = re.compile(
    r"^(?:postmaster|mailer-?daemon.*|mailer_daemon|mdaemon|mail-?delivery.*|abuse|hostmaster)$",
    re.IGNORECASE,
)
# Addresses a bounce names as senders, not as failed recipients.
_SENDER_CONTEXT = re.compile(
    r"(?:(?<!generated )(?<!expanded )\bfrom|\bsender|envelope-from|mail from|reply to|contact"
    r"|errors-to|return-path)"
    r"[\s:=<\"'(]*$",
    re.IGNORECASE,
)
_FOLLOWING_LIST = re.compile(
    r"(?:following|these) (?:recipients?|addresse?s?(?:\(es\))?|users?)\b.*:\s*$",
    re.IGNORECASE,
)
_SUMMARY_LINE = re.compile(r"^\W*(?:to|cc|bcc|from|sent|date|subject):", re.IGNORECASE)
_BARE_LOCAL_PART = re.compile(r"^[ \t>*]*([a-z0-9][\w.+-]*)[ \t]*$", re.IGNORECASE)
_TEMPORARY = re.compile(
    r"\bdelayed\b|\bpostponed\b|will (?:be )?retr(?:y|ied)"
    r"|(?:continue|keep) (?:to )?(?:try|attempt)"
    r"|attempts will continue|not yet been delivered|has not yet|this is (?:just )?a warning"
    r"|warning message|advisory-only|\btemporar(?:y|ily)\b|\btransient\b|will try again",
    re.IGNORECASE,
)
_PERMANENT = re.compile(
    r"\bpermanent(?:ly)?\b|\bgiven up\b|\bgiving up\b|\bgave up\b|not going to try again"
    r"|too long|\bfatal\b|failed \d+ attempts|maximum delivery attempts",
    re.IGNORECASE,
)
_SMTP_CODE = re.compile(r"(?<![\w.#-])([45])\d\d(?=[ \t][A-Za-z<\[#(]|[ \t][45]\.\d|-[A-Za-z])")


def _split_returned(text: str) -> tuple[str, str]:
    """Split TEXT into the notification and the quoted copy of the returned message."""
    cuts = [m.start() for m in (_RETURNED_MARKER.search(text), _HEADER_START.search(text)) if m]
    if not cuts:
        return text, ""
    cut = min(cuts)
    return text[:cut], text[cut:]


def _text_recipients(notice: str, ignored: set[str], domain: str) -> list[FailedRecipient]:
    permanent_text = _wording_permanent(notice, default=True)
    found: dict[str, FailedRecipient] = {}
    lines = notice.split("\n")
    in_list = False
    for number, line in enumerate(lines):
        context = " ".join(lines[number : number + 4])
        if _SUMMARY_LINE.match(line):
            continue  # "To: ..." / "Cc: ..." summarising the original message
        for match in _ADDRESS.finditer(line):
            address = _clean(match.group(0))
            if address in ignored or _DAEMONS.match(address.partition("@")[0]):
                continue
            if _SENDER_CONTEXT.search(line[: match.start()][-40:]):
                continue
            _add(found, _recipient(address, context, permanent_text))
        if _FOLLOWING_LIST.search(line):
            in_list = True
            continue
        if in_list and domain:
            bare = _BARE_LOCAL_PART.match(line)
            if bare and not _ADDRESS.search(line):
                name = bare.group(1).lower()
                if not _DAEMONS.match(name):
                    _add(found, _recipient(f"{name}@{domain}", context, permanent_text))
        if not line.strip():
            in_list = False
    return list(found.values())


def _recipient(address: str, context: str, permanent_text: bool) -> FailedRecipient:
    status = _STATUS.search(context)
    permanent = permanent_text
    if status and status.group(1) == "4" and not _PERMANENT.search(context):
        permanent = _wording_permanent(context, default=False) and permanent_text
    return FailedRecipient(address, status.group(0) if status else "", permanent)


def _wording_permanent(text: str, default: bool) -> bool:
    """Whether TEXT reads as a final failure; DEFAULT when it says nothing either way."""
    if _PERMANENT.search(text):
        return True
    if _TEMPORARY.search(text):
        return False
    status = _STATUS.search(text)
    if status:
        return status.group(1) == "5"
    code = _SMTP_CODE.search(text)
    if code and code.group(1) in "45":
        return code.group(1) == "5"
    return default


def _ignored_addresses(message: Message) -> set[str]:
    """The bounce's own correspondents: the reporting daemon and us."""
    ignored: set[str] = set()
    for name in ("From", "To", "Cc", "Sender", "Reply-To", "Return-Path"):
        for value in message.get_all(name) or []:
            ignored.update(_clean(m.group(0)) for m in _ADDRESS.finditer(str(value)))
    return ignored


def _domain_of(message: Message) -> str:
    """The reporting system's domain, for bounces naming bare local users."""
    found = _ADDRESS.search(str(message.get("From", "")))
    return _clean(found.group(0)).partition("@")[2] if found else ""


def _add(found: dict[str, FailedRecipient], recipient: FailedRecipient) -> None:
    known = found.get(recipient.address)
    if known is None:
        found[recipient.address] = recipient
    elif not known.status and recipient.status:
        found[recipient.address] = FailedRecipient(
            known.address, recipient.status, known.permanent or recipient.permanent
        )


# --- message ids -------------------------------------------------------------------------

_ID = re.compile(r"<[^<>\s]+>")
_ID_LINE = re.compile(
    r"^[> \t]*Message-Id:[ \t]*\n?[ \t]*(<[^<>\n]+>)", re.IGNORECASE | re.MULTILINE
)


def _header_ids(value: object) -> list[str]:
    if value is None:
        return []
    return [match.group(0) for match in _ID.finditer(_unfold(str(value)))][:1]


def _ids_in_text(text: str) -> list[str]:
    for match in _ID_LINE.finditer(text):
        ids = _header_ids(match.group(1))
        if ids:
            return ids
    return []


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


_ADDRESS_TYPE = re.compile(r"^(?:smtp|rfc-?822)[=:]", re.IGNORECASE)


def _clean(address: str) -> str:
    """Lower-case addr-spec, without quotes around it or an X.400-style "SMTP=" prefix."""
    return _ADDRESS_TYPE.sub("", address.strip().strip(".'\"")).lower()
