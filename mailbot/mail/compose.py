"""Outgoing mail: headers that thread it and stop other robots answering it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

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


def unsendable(address: str) -> str:
    """Why ADDRESS cannot be the To: of a letter of ours ("" when it can)."""
    try:
        probe = EmailMessage(policy=SMTP)
        probe["To"] = Address(addr_spec=address)
        probe.as_bytes()
    except Exception as exc:  # the email package raises defects, ValueError, HeaderParseError
        return f"{type(exc).__name__}: {exc}"
    return ""


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
    auto_submitted: str | None = "auto-generated"  # None: written by a person (a relayed reply)


def compose(
    letter: Letter,
    *,
    from_address: str,
    from_name: str,
    message_id: str,
    date: datetime,
    kind: str = "",
) -> bytes:
    """The RFC 5322 bytes of LETTER, with our loop and anti-auto-reply headers."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(header_safe(letter.from_name or from_name), addr_spec=from_address)
    msg["To"] = Address(header_safe(letter.to_name), addr_spec=letter.to_address)
    msg["Subject"] = header_safe(letter.subject, limit=250)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if letter.reply_to:
        msg["Reply-To"] = letter.reply_to
    if letter.in_reply_to:
        msg["In-Reply-To"] = letter.in_reply_to
    if letter.references:
        msg["References"] = " ".join(letter.references)
    # RFC 3834 and the Microsoft and vacation(1) conventions: no robot should answer us
    if letter.auto_submitted:
        msg["Auto-Submitted"] = letter.auto_submitted
        msg["Precedence"] = "bulk"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = from_address
    if kind:
        msg["X-Mailbot-Kind"] = kind  # which letter of the procedure this is, for admins
    msg.set_content(letter.text)
    if letter.html is not None:
        msg.add_alternative(letter.html, subtype="html")
    return msg.as_bytes()
