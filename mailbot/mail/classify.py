"""Who sent this: a person, or a machine that must never be answered (RFC 3834)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mailbot.mail.parse import ParsedMessage


class Sender(StrEnum):
    """What kind of sender a message comes from."""

    PERSON = "person"
    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"  # auto-replies, out-of-office, other robots
    MAILING_LIST = "mailing_list"
    OWN_MAIL = "own_mail"  # from our own address, or carrying our loop header


@dataclass(frozen=True)
class Classification:
    """The verdict and the header or rule that decided it."""

    sender: Sender
    reason: str

    @property
    def is_machine(self) -> bool:
        return self.sender is not Sender.PERSON


LOOP_HEADER = "X-Mailbot-Loop"

_DAEMON_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster", "mdaemon"}
)
_DAEMON_NAME = re.compile(r"mail\W*delivery\W*(subsystem|system|service)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|failure notice|returned mail|mail delivery fail"
    r"|delivery fail|failure delivery|failed mail|delivery problem|non-delivery|not delivered"
    r"|could not be delivered|delivery report|delivery notification|mail error"
    r"|delivery warning|user unknown|delayed mail|message delayed",
    re.IGNORECASE,
)
# Phrases only mail servers write; a customer's "your parcel was not delivered" has none.
_BOUNCE_BODY = re.compile(
    r"final-recipient:|diagnostic-code:|reporting-mta:|this is the mail system at host"
    r"|this is the qmail-send program|the original message was received at"
    r"|permanent fatal errors|could not be delivered to one or more recipients"
    r"|delivery to the following recipients? failed|message could not be delivered"
    r"|unable to deliver message|user unknown|no such user|mailbox unavailable"
    r"|recipient address rejected|unrouteable address|host unknown|smtp error"
    r"|the following addresses? had|unrecoverable error|\b5\.\d\.\d+\b|\b55[0-4][ -]"
    r"|could not be delivered to the following|following (e-?)?mail could not be delivered"
    r"|non-delivery report|lines of your original message follow",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|autoreply"
    r"|auto:|abwesenheit|réponse automatique|respuesta automática|risposta automatica"
    r"|automatisch antwoord)",
    re.IGNORECASE,
)
_SUPPRESS_TOKENS = frozenset({"all", "oof", "autoreply", "dr", "rn", "nrn"})


def classify(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification:
    """Classify MESSAGE; OWN_ADDRESSES are lower-case addresses mailbot sends from."""
    for rule in (_own_mail, _bounce, _auto_reply, _mailing_list):
        verdict = rule(message, own_addresses)
        if verdict is not None:
            return verdict
    return Classification(Sender.PERSON, "no automation headers")


def _own_mail(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    if message.header(LOOP_HEADER) is not None:
        return Classification(Sender.OWN_MAIL, f"{LOOP_HEADER} header")
    if message.sender is not None and message.sender.email in own_addresses:
        return Classification(Sender.OWN_MAIL, f"From our own address {message.sender.email}")
    # a copy of something we sent (a relay or robot bouncing it back unchanged)
    own_domains = {address.rpartition("@")[2] for address in own_addresses}
    local, _, domain = message.message_id.strip("<>").rpartition("@")
    if local.startswith("mailbot.") and domain.lower() in own_domains:
        return Classification(Sender.OWN_MAIL, f"our own Message-ID {message.message_id}")
    return None


def _bounce(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    content_type = message.header("Content-Type") or ""
    if message.content_type == "multipart/report" and re.search(
        r"report-type\s*=\s*\"?delivery-status", content_type, re.IGNORECASE
    ):
        return Classification(Sender.BOUNCE, "multipart/report delivery-status")
    sender = message.sender
    local_part = sender.email.rpartition("@")[0].strip('"\\') if sender else ""
    if local_part.lower() in _DAEMON_LOCAL_PARTS or local_part.lower().startswith("mailer-daemon"):
        return Classification(Sender.BOUNCE, f"From {local_part.lower()}")
    if sender is not None and _DAEMON_NAME.search(f"{sender.name} {local_part}"):
        return Classification(Sender.BOUNCE, f"From {sender.name or local_part}")
    # Weaker signals: a machine sender (null return path or null From) or a bounce-like
    # subject, confirmed by wording only mail servers use.
    null_sender = _null_return_path(message) or (sender is None or not sender.email)
    bounce_subject = _BOUNCE_SUBJECT.search(message.subject)
    if null_sender and bounce_subject:
        return Classification(Sender.BOUNCE, f"null sender, subject {bounce_subject.group(0)!r}")
    if not (null_sender or bounce_subject):
        return None
    bounce_body = _BOUNCE_BODY.search(message.text[:20000])
    if bounce_body:
        return Classification(Sender.BOUNCE, f"DSN wording {bounce_body.group(0).strip()!r}")
    return None


def _auto_reply(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    auto_submitted = (message.header("Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return Classification(Sender.AUTO_REPLY, f"Auto-Submitted: {auto_submitted}")
    for name in ("X-Autoreply", "X-Autorespond"):
        if message.header(name) is not None:
            return Classification(Sender.AUTO_REPLY, f"{name} header")
    precedence = _precedence(message)
    if precedence in ("auto_reply", "junk"):
        return Classification(Sender.AUTO_REPLY, f"Precedence: {precedence}")
    suppress = message.header("X-Auto-Response-Suppress") or ""
    tokens = {token.lower() for token in re.split(r"[\s,;]+", suppress) if token}
    if tokens & _SUPPRESS_TOKENS:
        return Classification(Sender.AUTO_REPLY, f"X-Auto-Response-Suppress: {suppress}")
    if _null_return_path(message):
        return Classification(Sender.AUTO_REPLY, "Return-Path: <>")
    subject = _AUTO_REPLY_SUBJECT.search(message.subject)
    if subject:
        return Classification(Sender.AUTO_REPLY, f"subject {subject.group(0)!r}")
    return None


def _mailing_list(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    if message.header("List-Id") is not None:
        return Classification(Sender.MAILING_LIST, "List-Id header")
    precedence = _precedence(message)
    if precedence in ("bulk", "list"):
        if message.header("List-Unsubscribe") is not None:
            return Classification(
                Sender.MAILING_LIST, f"List-Unsubscribe with Precedence: {precedence}"
            )
        return Classification(Sender.MAILING_LIST, f"Precedence: {precedence}")
    return None


def _precedence(message: ParsedMessage) -> str:
    return (message.header("Precedence") or "").strip().lower()


def _null_return_path(message: ParsedMessage) -> bool:
    return "".join((message.header("Return-Path") or "x").split()) == "<>"
