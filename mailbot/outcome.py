"""What happened to one inbound message: the Outcome, and the two ways of recording it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from mailbot.store import db
from mailbot.store.models import Case, Disposition, Event, Inbound, MessageKind


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
    claimed_elsewhere: bool = False  # another daemon holds it: leave it in the mailbox
    case: Case | None = field(default=None, repr=False, compare=False)  # for this transaction

    def describe(self) -> str:
        parts = [f"message_id={self.message_id}"]
        if self.duplicate:
            parts.append("duplicate: already processed")
        if self.claimed_elsewhere:
            parts.append("being processed by another mailbot")
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
        db.note_in_thread(session, case.id, inbound.message_id, ours=False)
    session.add(Event(case_id=case.id, at=at, actor=actor, action=inbound.kind, detail=why))
    return Outcome(
        inbound.message_id,
        Disposition.CASE,
        case_ref=case.ref,
        kind=inbound.kind,
        reason=why,
        case=case,
    )
