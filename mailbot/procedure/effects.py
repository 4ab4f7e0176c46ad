"""Effects: what the procedure decides, as values; the applier (mailbot/apply.py) writes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailbot.mail.parse import Address
from mailbot.procedure.case import CaseState
from mailbot.procedure.details import Detail
from mailbot.procedure.vocabulary import MessageKind, StaffMember


@dataclass(frozen=True)
class Change:
    """Set the case's FIELDS (CaseState's names)."""

    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Record:
    """An event on the case."""

    actor: str
    action: str
    detail: str = ""


@dataclass(frozen=True)
class Open:
    """Open a case for the message in hand, as STATE says it starts (its reference is given
    when it is written); the effects after it are on the new case."""

    state: CaseState
    details: frozenset[Detail]


@dataclass(frozen=True)
class Attach:
    """Put the message in hand on the case as KIND, with an event saying who sent what."""

    kind: MessageKind
    actor: str
    why: str = ""
    reason: str = ""  # kept on the message: why a robot's mail is what it is


@dataclass(frozen=True)
class Ignore:
    """Keep the message in hand as KIND on no case, with the reason (a robot naming none)."""

    kind: MessageKind | None
    reason: str


@dataclass(frozen=True)
class Quarantine:
    """Set the message in hand aside for an admin, with the reason; nothing acts on it."""

    kind: MessageKind | None
    reason: str


@dataclass(frozen=True)
class Hold:
    """Keep the message in hand on no case, unanswered, for staff to release: the mail
    platform called it spam or forged (REASON, in its words)."""

    reason: str


@dataclass(frozen=True)
class Release:
    """Release the held message INBOUND_ID (BY: who): it is processed as on its arrival."""

    inbound_id: int
    by: str


@dataclass(frozen=True)
class TooLarge:
    """Tell SENDER politely that their message was too large to read (it is kept)."""

    sender: Address
    subject: str
    message_id: str
    size: int
    limit: int


@dataclass(frozen=True)
class ToCustomer:
    """Letter KIND (templates/KIND.txt.j2) to the customer, under the case's one subject."""

    kind: MessageKind
    context: Mapping[str, Any] = field(default_factory=dict)
    signed_by: str = ""  # the member of staff whose act it is ("": whoever signs the case's)


@dataclass(frozen=True)
class Acknowledge:
    """R2: the acknowledgement, naming the R1 details still MISSING."""

    missing: tuple[Detail, ...]


@dataclass(frozen=True)
class Relay:
    """A member of staff's words to the customer, signed with their name."""

    member: StaffMember
    text: str


@dataclass(frozen=True)
class Notify:
    """Tell the case's handlers what was written; a plain Reply comes back to us."""

    headline: str
    text: str
    missing: tuple[Detail, ...] = ()
    attachments: tuple[str, ...] = ()
    support: tuple[str, ...] = ()  # the customer's sentences that suggest a need, quoted first


@dataclass(frozen=True)
class NotifyThirdParty:
    """Tell the case's handlers that WRITER, not the customer, wrote about it."""

    writer: Address
    text: str
    deadlock_words: str | None
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToRole:
    """Letter KIND (templates/KIND_staff.txt.j2) to all staff with ROLE (and the case's
    handlers, each once, if ALSO_HANDLERS), in the case's thread."""

    role: str
    kind: MessageKind
    context: Mapping[str, Any] = field(default_factory=dict)
    also_handlers: bool = False


@dataclass(frozen=True)
class ToStaff:
    """A short letter to one member of staff (a confirmation, an error, an alert)."""

    member: StaffMember
    kind: MessageKind
    template: str
    title: str
    in_reply_to: str | None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LetterHeld:
    """Tell the managers at once that letter KIND to the customer was held back (REASON)."""

    kind: MessageKind
    reason: str


@dataclass(frozen=True)
class Undelivered:
    """Our letter MESSAGE_ID did not reach its recipient: a bounce said so (REASON)."""

    message_id: str
    reason: str


@dataclass(frozen=True)
class ToPrint:
    """Tell the managers at once that our letter MESSAGE_ID (an ADR notice or deadlock letter)
    bounced (REASON) and must go by post: the letter attached, for printing."""

    message_id: str
    kind: str
    reason: str


@dataclass(frozen=True)
class Suppress:
    """No more automated mail to ADDRESS: it bounced permanently."""

    address: str
    reason: str


@dataclass(frozen=True)
class OnCase:
    """EFFECTS on another case, REF (read by the load stage, locked with this one)."""

    ref: str
    effects: tuple[Effect, ...]


Effect = (
    Open
    | Attach
    | Ignore
    | Quarantine
    | Hold
    | Release
    | TooLarge
    | Change
    | Record
    | ToCustomer
    | Acknowledge
    | Relay
    | Notify
    | NotifyThirdParty
    | ToRole
    | ToStaff
    | LetterHeld
    | Undelivered
    | ToPrint
    | Suppress
    | OnCase
)
