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
    READ_RECEIPT = "read_receipt"  # a disposition notification (RFC 8098): "Read: ..."
    REPORT = "report"  # other machine reports: abuse feedback (ARF), TLS, DMARC
    AUTO_REPLY = "auto_reply"  # auto-replies, out-of-office, gateways' automatic answers
    MAILING_LIST = "mailing_list"  # list mail, and list processors' replies
    NOTIFICATION = "notification"  # a service's mail from an address that takes no reply
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
    {
        "mailer-daemon",
        "mailer_daemon",
        "mailerdaemon",
        "mail-daemon",
        "maildaemon",
        "postmaster",
        "post_master",
        "post-master",
        "mdaemon",
    }
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
    for rule in (
        _own_mail,
        _report,
        _bounce,
        _read_receipt,
        _auto_reply,
        _mailing_list,
        _machine_report,
        _no_reply,
    ):
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


_REPORT_TYPES = {
    "delivery-status": Sender.BOUNCE,  # RFC 3464
    "disposition-notification": Sender.READ_RECEIPT,  # RFC 8098
    "feedback-report": Sender.REPORT,  # RFC 5965 (ARF): abuse and spam complaints
    "tlsrpt": Sender.REPORT,  # RFC 8460
}
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([\w.-]+)", re.IGNORECASE)


def _report(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    """Every multipart/report is a machine's (RFC 6522), whatever it reports."""
    if message.content_type != "multipart/report":
        return None
    found = _REPORT_TYPE.search(message.header("Content-Type") or "")
    report_type = found.group(1).lower() if found else ""
    sender = _REPORT_TYPES.get(report_type)
    if sender is not None:
        return Classification(sender, f"multipart/report {report_type}")
    # no or an unknown report-type: a bounce if it reads like one, else some report
    return _bounce(message, own_addresses) or Classification(
        Sender.REPORT, f"multipart/report {report_type or 'without report-type'}"
    )


def _bounce(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    sender = message.sender
    local_part = sender.email.rpartition("@")[0].strip('"\\') if sender else ""
    if local_part.lower() in _DAEMON_LOCAL_PARTS or local_part.lower().startswith("mailer-daemon"):
        return Classification(Sender.BOUNCE, f"From {local_part.lower()}")
    if sender is not None and _DAEMON_NAME.search(f"{sender.name} {local_part}"):
        return Classification(Sender.BOUNCE, f"From {sender.name or local_part}")
    # Weaker signals: a machine sender (null return path or null From) or a bounce-like
    # subject, confirmed by wording only mail servers use.
    null_sender = _null_return_path(message) or message.sender_header != "From"
    bounce_subject = _BOUNCE_SUBJECT.search(message.subject)
    if null_sender and bounce_subject:
        return Classification(Sender.BOUNCE, f"null sender, subject {bounce_subject.group(0)!r}")
    if not (null_sender or bounce_subject):
        return None
    bounce_body = _BOUNCE_BODY.search(message.text[:20000])
    if bounce_body:
        return Classification(Sender.BOUNCE, f"DSN wording {bounce_body.group(0).strip()!r}")
    return None


# Outlook, Exchange, Lotus Notes and others, in their own words: a disposition notice
# sent as plain text. The subject alone is not enough ("Read: my bill" is a person's).
_READ_SUBJECT = re.compile(
    r"^\s*(read|not read|read receipt|lu|non lu|gelesen|ungelesen|gelezen|niet gelezen"
    r"|leído|no leído|letto|lido|läst|luettu|læst|lest|przeczytano)\s*:",
    re.IGNORECASE,
)
_READ_WORDING = re.compile(
    r"was read on|was deleted without being read|has been read|a été lu|wurde am .{0,40}gelesen"
    r"|is gelezen|fue leído|è stato letto|foi lido|return receipt",
    re.IGNORECASE,
)


def _read_receipt(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    subject = _READ_SUBJECT.match(message.subject)
    if subject and _READ_WORDING.search(message.text[:2000]):
        return Classification(Sender.READ_RECEIPT, f"subject {subject.group(0).strip()!r}")
    return None


# RFC 3834's header and the ones robots used before it (vacation programs, Exchange,
# FirstClass, qmail's autoresponder ...)
_AUTO_HEADERS = (
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponse",
    "X-Autogenerated",
    "X-AutoReply-From",
    "X-Mail-Autoreply",
    "X-FC-MachineGenerated",
)
# Email-to-SMS and carrier gateways: what comes from them is the network's automatic
# answer, unless it carries a phone number's text (the local part is the number).
_SMS_GATEWAYS = frozenset(
    {
        "vtext.com", "vzwpix.com", "txt.att.net", "mms.att.net", "tmomail.net",
        "messaging.sprintpcs.com", "pm.sprint.com", "sms.myboostmobile.com", "mymetropcs.com",
        "email.uscc.net", "mms.uscc.net", "msg.fi.google.com", "text.republicwireless.com",
        "vmobl.com", "mmst5.tracfone.com", "mms.cricketwireless.net", "sms.cricketwireless.net",
        "txt.bell.ca", "msg.telus.com", "pcs.rogers.com", "txt.freedommobile.ca",
        "sms.sasktel.com",
    }
)  # fmt: skip
_PHONE_NUMBER = re.compile(r"^\+?\d{6,15}$")


def _auto_reply(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    auto_submitted = (message.header("Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return Classification(Sender.AUTO_REPLY, f"Auto-Submitted: {auto_submitted}")
    for name in _AUTO_HEADERS:
        value = (message.header(name) or "").strip().lower()
        if value not in ("", "no", "false", "0"):
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
    local, domain = _local_and_domain(message)
    if domain in _SMS_GATEWAYS and not _PHONE_NUMBER.match(local):
        return Classification(Sender.AUTO_REPLY, f"SMS gateway {domain}")
    return None


# Mailman, Majordomo, LISTSERV, ezmlm, Sympa ...: their replies (command results, "awaits
# moderator approval", unsubscribed) come from the list's robot addresses
_LIST_ROBOT = re.compile(
    r"^(listserv|majordomo|mailman|ezmlm|sympa|listproc|lyris|owner-.+"
    r"|.+-(bounces|request|owner|confirm)(\+.*)?)$",
    re.IGNORECASE,
)
_LIST_HEADERS = (
    "X-List-Administrivia",
    "Mailing-List",
    "X-Mailman-Version",
    "X-Listprocessor-Version",
    "X-ML-Name",  # fml and other list managers' notices (loop alerts, command results)
    "X-MLServer",
)


def _mailing_list(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    if message.header("List-Id") is not None:
        return Classification(Sender.MAILING_LIST, "List-Id header")
    for name in _LIST_HEADERS:
        if message.header(name) is not None:
            return Classification(Sender.MAILING_LIST, f"{name} header")
    for header in ("Sender", "From"):
        local = _local_part(message.header(header) or "")
        if _LIST_ROBOT.match(local):
            return Classification(Sender.MAILING_LIST, f"{header} is a list robot: {local}")
    precedence = _precedence(message)
    if precedence in ("bulk", "list"):
        if message.header("List-Unsubscribe") is not None:
            return Classification(
                Sender.MAILING_LIST, f"List-Unsubscribe with Precedence: {precedence}"
            )
        return Classification(Sender.MAILING_LIST, f"Precedence: {precedence}")
    return None


# DMARC aggregate reports (RFC 7489 7.2.1.1) are plain mail with a zip attached
_REPORT_SUBJECT = re.compile(r"^\s*report domain:.{1,300}submitter:", re.IGNORECASE)


# Feedback loops that are not multipart/report: Microsoft's JMRP sends the message complained
# of as a message/rfc822 part under this subject; AOL's older loop wrote the second
_FEEDBACK_SUBJECT = re.compile(
    r"^\s*(complaint about message from \S+|email feedback report for ip \S+)", re.IGNORECASE
)


def _machine_report(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    if _REPORT_SUBJECT.match(message.subject):
        return Classification(Sender.REPORT, "subject of a DMARC aggregate report")
    feedback = _FEEDBACK_SUBJECT.match(message.subject)
    if feedback and message.content_type.startswith("multipart/"):
        return Classification(Sender.REPORT, f"feedback loop: subject {feedback.group(1)!r}")
    return None


# Addresses that take no reply: "noreply", "no-reply", "donotreply", "notifications" of a
# cloud service ("calendar-notification@", "noreply-dmarc-support@" ...)
_NO_REPLY = re.compile(
    r"(^|[-_.+])(no|do[-_.]?not|dont|never)[-_.]?(reply|respond|response)([-_.+]|$)"
    r"|(^|[-_.+])(notifications?|automailer)([-_.+]|$)",
    re.IGNORECASE,
)


# What such services write above their text; a person's own words never say it of them.
# The look-ahead for the first letters is a cheap test at every position before the
# alternatives are tried (3x faster).
_NO_REPLY_WORDING = re.compile(
    r"(?=[dprt])"
    r"(?:replies to this (e-?mail|message) (are|is|will) not (be )?(monitored|read|answered)"
    r"|(please )?do not reply to this (e-?mail|message)"
    r"|this (e-?mail )?(address|mailbox) (is not monitored|does not (accept|receive))"
    r"|this is an (automated|automatic|unmonitored) (message|e-?mail|notification|response))",
    re.IGNORECASE,
)
# Where quoted or forwarded mail starts: wording below it is someone else's.
_QUOTED = re.compile(
    r"^(>|-{2,} ?(original message|forwarded message)|begin forwarded message|from: |on .{0,200}"
    r" wrote:)",
    re.IGNORECASE | re.MULTILINE,
)


def _no_reply(message: ParsedMessage, own_addresses: frozenset[str]) -> Classification | None:
    local, _ = _local_and_domain(message)
    if _NO_REPLY.search(local):
        return Classification(Sender.NOTIFICATION, f"From {local}@, an address that takes no reply")
    own_text = message.text[:3000]
    quoted = _QUOTED.search(own_text)
    wording = _NO_REPLY_WORDING.search(own_text[: quoted.start()] if quoted else own_text)
    if wording:
        return Classification(Sender.NOTIFICATION, f"wording {wording.group(0)!r}")
    return None


def _local_and_domain(message: ParsedMessage) -> tuple[str, str]:
    address = message.sender.email if message.sender else ""
    local, _, domain = address.rpartition("@")
    return local.strip('"')[-_MAX_LOCAL:], domain.lower()


_MAX_LOCAL = 256  # RFC 5321 allows 64; a hostile header's 100,000 need no regex's time


def _local_part(header: str) -> str:
    """The local part of the first address in a header value (split, not searched: a
    regex search over a long header without an @ takes quadratic time)."""
    before, at, _ = header.partition("@")
    return re.split(r"[\s<>,\"]", before[-_MAX_LOCAL:])[-1] if at else ""


def _precedence(message: ParsedMessage) -> str:
    return (message.header("Precedence") or "").strip().lower()


def _null_return_path(message: ParsedMessage) -> bool:
    return "".join((message.header("Return-Path") or "x").split()) == "<>"
