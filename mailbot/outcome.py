"""What happened to one inbound message: the Outcome, and the two ways of recording it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from jinja2 import TemplateError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from mailbot.store import db
from mailbot.store.models import Case, Disposition, Inbound, MessageKind

# Faults of ours, not the message's: it waits in the mailbox for the next cycle instead of
# going to quarantine (the database unreachable, locked or failing; a broken template).
OUR_FAULTS: tuple[type[Exception], ...] = (DBAPIError, TemplateError)


def our_fault(error: Exception) -> bool:
    """True when ERROR is ours (OUR_FAULTS), not the message's. An IntegrityError is not
    among them: another daemon took the same row first, and the intake tries again."""
    return isinstance(error, OUR_FAULTS) and not isinstance(error, IntegrityError)


@dataclass
class Outcome:
    """What happened to one message, for the log line and the mailbox move."""

    message_id: str
    disposition: Disposition
    reason: str = ""
    case_ref: str | None = None
    new_case: bool = False
    kind: str = ""
    queued: list[str] = field(default_factory=list)
    duplicate: bool = False
    # why it is left in the mailbox, and the checkpoint waits for it: another daemon holds
    # it, or a fault of ours (OUR_FAULTS); it is processed at a later cycle
    left_in_mailbox: str = ""

    def describe(self) -> str:
        parts = [f"message_id={self.message_id}"]
        if self.duplicate:
            parts.append("duplicate: already processed")
        if self.left_in_mailbox:
            parts.append(f"left in the mailbox: {self.left_in_mailbox}")
        parts.append(f"-> {self.disposition.value}")
        if self.kind:
            parts.append(f"kind={self.kind}")
        if self.case_ref:
            parts.append(f"case={self.case_ref}{' (new)' if self.new_case else ''}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        parts.append("queued=" + (",".join(self.queued) or "nothing"))
        return " ".join(parts)


def set_aside(inbound: Inbound, disposition: Disposition, reason: str) -> Outcome:
    """Record INBOUND on no case (ignored) or in quarantine, with the reason."""
    inbound.disposition, inbound.reason = disposition, reason
    return Outcome(inbound.message_id, disposition, reason=reason, kind=inbound.kind or "")


def attach(
    session: Session, inbound: Inbound, case: Case, actor: str, at: datetime, why: str = ""
) -> Outcome:
    """Put INBOUND on CASE, with an event saying who sent what."""
    assert case.id is not None and inbound.kind is not None
    inbound.case_id, inbound.disposition = case.id, Disposition.CASE
    if inbound.kind in (MessageKind.COMPLAINT, MessageKind.CUSTOMER_REPLY):
        db.note_in_thread(session, case.id, inbound.message_id, inbound.received_at, ours=False)
    db.record_event(session, case.id, at, actor, inbound.kind, why)
    return Outcome(
        inbound.message_id,
        Disposition.CASE,
        case_ref=case.ref,
        kind=inbound.kind,
        reason=why,
    )
