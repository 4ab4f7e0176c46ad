"""Outgoing mail: headers that thread it and stop other robots answering it."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime
from functools import lru_cache

from mailbot.mail.classify import LOOP_HEADER

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")


def header_safe(value: str, limit: int = 200) -> str:
    """VALUE with control characters (CR, LF ...) folded to spaces and cut to LIMIT."""
    # "=?" in text would read as the start of an RFC 2047 encoded word: break it up
    cleaned = " ".join(_UNSAFE.sub(" ", value).replace("=?", "= ?").split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def new_message_id(domain: str) -> str:
    """A fresh Message-ID in our own domain."""
    return f"<mailbot.{uuid.uuid4().hex}@{domain}>"


@lru_cache(maxsize=4096)
def unsendable(address: str) -> str:
    """Why ADDRESS cannot be the To: of a letter of ours ("" when it can).

    Only an addr-spec a mail server could route is written to: what a sender's client
    garbled ("test test@example.com", "jane@example") would only bounce, or reach a stranger
    at a host of that name. A non-ASCII address (RFC 6531) can be written to: whether it
    goes depends on the server's SMTPUTF8, known only when sending.
    """
    if any(ch.isspace() for ch in address):
        return "not an address: it holds a space"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return "not an address: it needs one @ between a name and a domain"
    if not (domain.startswith("[") or "." in domain):
        return f"not an address: no dot in the domain {domain!r}"
    if not address.isascii():  # no control characters, a UTF-8 local part and domain
        ok = _UTF8_ADDRESS.match(address) and address.isprintable()
        return "" if ok else "not an address mail can be sent to"
    if not (_LOCAL_PART.match(local) and _DOMAIN.match(domain)) or len(address) > 254:
        return "not a valid address"
    return ""


def cannot_address(address: str) -> str:
    """Why no letter can go to ADDRESS, as the outbox records it ("" when one can)."""
    problem = unsendable(address)
    return f"cannot address mail to {address!r} ({problem})" if problem else ""


@dataclass(frozen=True)
class Letter:
    """What to send, before it becomes bytes."""

    to_address: str
    to_name: str
    subject: str
    text: str
    html: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    reply_to: str | None = None
    from_name: str | None = None  # defaults to the configured from_name
    author: str = ""  # the member of staff who wrote it (a relayed reply); "" for mailbot's
    auto_submitted: str | None = "auto-generated"  # None: written by a person (a relayed reply)
    image: tuple[str, bytes] | None = None  # (Content-ID, PNG) the HTML shows as cid:ID
    attached: tuple[str, str] | None = None  # (file name, text): a text file attached
    enclosed: tuple[str, bytes] | None = None  # (file name, an e-mail's bytes) attached whole


def compose(
    letter: Letter,
    *,
    from_address: str,
    from_name: str,
    message_id: str,
    date: datetime,
    kind: str = "",
) -> bytes:
    """The RFC 5322 bytes of LETTER, with our loop and anti-auto-reply headers.

    Written directly rather than through EmailMessage, which spends a millisecond on
    its header registry per letter: every value is cleaned by header_safe and encoded
    (RFC 2047) by email.header, every Message-ID checked to be plain ASCII. The bytes are
    ASCII but for a non-ASCII address, kept as UTF-8 (RFC 6532) and sent with SMTPUTF8.
    """
    headers = [
        ("From", _mailbox(letter.from_name or from_name, from_address)),
        ("To", _mailbox(letter.to_name, letter.to_address)),
        ("Subject", _words("Subject", header_safe(letter.subject, limit=250))),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id),
    ]
    if letter.reply_to:
        headers.append(("Reply-To", _mailbox("", letter.reply_to)))
    if letter.in_reply_to and _MESSAGE_ID.match(letter.in_reply_to):
        headers.append(("In-Reply-To", letter.in_reply_to))
    references = [r for r in letter.references if _MESSAGE_ID.match(r)]
    if references:
        headers.append(("References", "\r\n ".join(references)))
    # RFC 3834 and Microsoft's convention: no robot should answer us. No "Precedence: bulk":
    # these are letters to one person, and spam filters score bulk mail
    if letter.auto_submitted:
        headers.append(("Auto-Submitted", letter.auto_submitted))
    headers += [("X-Auto-Response-Suppress", "All"), (LOOP_HEADER, from_address)]
    if kind:
        headers.append(("X-Mailbot-Kind", kind))  # which letter of the procedure, for admins
    headers.append(("MIME-Version", "1.0"))
    text = _part("plain", letter.text)
    if letter.html is None:
        body = text
    else:
        html = _part("html", letter.html)
        if letter.image is not None:  # mail clients show a PNG by cid, not an SVG
            html = _multipart("related", html, _png(*letter.image))
        body = _multipart("alternative", text, html)
    if letter.attached is not None:
        body = _multipart("mixed", body, _attached_text(*letter.attached))
    if letter.enclosed is not None:
        body = _multipart("mixed", body, _enclosed(*letter.enclosed))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + body).encode("utf-8")


_MESSAGE_ID = re.compile(r"^<[!-;=?-~]{1,250}>$")  # printable ASCII, no <, > or space
_ATOMS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ .-]*$")


def _mailbox(name: str, address: str) -> str:
    """'Name <address>', the name quoted or RFC 2047-encoded as it needs."""
    if unsendable(address):
        raise ValueError(f"cannot address mail to {address!r}")
    name = header_safe(name)
    if not name:
        return address
    if _ATOMS.match(name):
        return f"{name} <{address}>" if "." not in name else f'"{name}" <{address}>'
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    encoded = Header(name, "utf-8", header_name="From").encode(linesep="\r\n")
    return f"{encoded} <{address}>"


# RFC 6531: UTF-8 in the local part and the domain (U-labels)
_UTF8_ADDRESS = re.compile(
    r"^[!#-'*+\-/-9=?A-Z^-~.\u0080-\U0010ffff]+@[A-Za-z0-9.\-\u0080-\U0010ffff]+$"
)
# RFC 5321 4.1.2: a dot-atom local part; a domain of LDH labels with a letter in its last,
# or an address literal
_LOCAL_PART = re.compile(r"^[!#-'*+\-/-9=?A-Z^-~]+(\.[!#-'*+\-/-9=?A-Z^-~]+)*$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(
    rf"^({_LABEL}\.)+([A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})\.?$|^\[[0-9A-Fa-f.:]+\]$"
)


def _words(name: str, value: str) -> str:
    """VALUE as a header body: folded, RFC 2047-encoded when it is not plain ASCII."""
    if value.isascii() and len(name) + len(value) < 76:
        return value
    charset = "us-ascii" if value.isascii() else "utf-8"
    return Header(value, charset, header_name=name).encode(linesep="\r\n")


def _multipart(subtype: str, *parts: str) -> str:
    boundary = f"=_mailbot_{uuid.uuid4().hex}"
    inner = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return (
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n{inner}--{boundary}--\r\n'
    )


def _png(content_id: str, png: bytes) -> str:
    """An inline image part, shown where the HTML says cid:CONTENT_ID."""
    encoded = base64.encodebytes(png).decode("ascii").replace("\n", "\r\n")
    return (
        "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-ID: <{content_id}>\r\nContent-Disposition: inline\r\n\r\n{encoded}"
    )


def _attached_text(filename: str, text: str) -> str:
    """A plain-text file attached under FILENAME (a letter whose copy staff must make)."""
    safe = header_safe(filename).replace('"', "")
    part = _part("plain", text)
    head, _, rest = part.partition("\r\n")
    return f'{head}\r\nContent-Disposition: attachment; filename="{safe}"\r\n{rest}'


def _enclosed(name: str, raw: bytes) -> str:
    """An e-mail attached whole (message/rfc822): any mail program opens and prints it.

    Our own letters' bytes: CRLF lines of at most 998 octets, ASCII but for an address."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return (
        f'Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="{safe}"'
        f"\r\n\r\n{raw.decode('utf-8', errors='replace')}"
    )


def _part(subtype: str, content: str) -> str:
    """A text part: 7bit when it is short-lined ASCII, else quoted-printable UTF-8."""
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if not content.endswith("\n"):
        content += "\n"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
    lines = content.split("\n")
    if content.isascii() and max(map(len, lines)) <= 76 and not _exposed(content):
        return head + "Content-Transfer-Encoding: 7bit\r\n\r\n" + "\r\n".join(lines)
    # binascii's encoder is C (email.quoprimime's is Python, 20x slower): soft breaks,
    # "=" and white space before a line break encoded, CRLF as given
    data = content.replace("\n", "\r\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).decode("ascii")
    lines = encoded.split("\r\n")
    if max(map(len, lines)) > _QP_LINE or _exposed(encoded):  # rare: a line at a time
        encoded = "\r\n".join(_kept_to_rfc(lines))
    return head + "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded


# Line starts a mail system may change: an mbox writer's ">From ", a relay that does not
# dot-stuff dropping the ".". Encoded, their lines reach the customer as written.
_EXPOSED = ("From ", ".")
_QP_LINE = 76  # RFC 2045 6.7: an encoded line's most characters, a soft break's "=" included


def _exposed(text: str) -> bool:
    """Whether a line of TEXT starts as _EXPOSED says (searched in C, not a line at a time)."""
    return text.startswith(_EXPOSED) or "\nFrom " in text or "\n." in text


def _kept_to_rfc(lines: list[str]) -> list[str]:
    """Quoted-printable LINES with an exposed start's first character encoded, and a line
    longer than _QP_LINE broken again (a soft break) before an escape it would split:
    b2a_qp writes 78 when it encodes the white space that ends a 75-character line."""
    out = []
    for line in lines:
        while True:
            if line.startswith(_EXPOSED):
                line = f"={ord(line[0]):02X}{line[1:]}"
            if len(line) <= _QP_LINE:
                break
            cut = _QP_LINE - 1
            cut -= 1 if line[cut - 1] == "=" else 2 if line[cut - 2] == "=" else 0
            out.append(line[:cut] + "=")
            line = line[cut:]
        out.append(line)
    return out
