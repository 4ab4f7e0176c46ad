"""What became of one inbound message (the Outcome), for its log line and its mailbox move."""

from __future__ import annotations

from dataclasses import dataclass, field

from jinja2 import TemplateError

from mailbot.procedure.vocabulary import Disposition
from mailbot.store.connection import database_fault


def our_fault(error: Exception) -> bool:
    """True when ERROR is ours, not the message's: it waits in the mailbox for the next cycle
    instead of going to quarantine (the database unreachable, locked or failing; a broken
    template). A conflict is not among them: another daemon took the same row first, and the
    intake tries again."""
    return database_fault(error) or isinstance(error, TemplateError)


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
    released: list[int] = field(default_factory=list)  # held messages a staff reply released

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
