"""A case as the procedure decides on it: one shape, made from the row by store.cases.state_of."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime

from mailbot.procedure.needs import Need
from mailbot.procedure.vocabulary import CaseStatus, Level


@dataclass(frozen=True)
class CaseState:
    """What the procedure knows of a case: a snapshot, changed only by applying effects."""

    ref: str  # "" until the applier numbers a case being opened
    subject: str
    customer_email: str
    customer_name: str
    received_at: datetime
    first_response_due: datetime
    adr_date: datetime
    addresses: frozenset[str] = frozenset()  # every address that is the customer's
    status: CaseStatus = CaseStatus.OPEN
    level: Level = Level.TEAM_LEADER
    flags: frozenset[str] = frozenset()
    update_interval_days: int = 1
    update_interval_agreed_by: str = ""
    resolved_at: datetime | None = None
    resolution_summary: str = ""
    escalated_at: datetime | None = None
    first_staff_reply_at: datetime | None = None
    last_customer_contact_at: datetime | None = None
    first_response_overdue_sent_at: datetime | None = None
    adr_notice_decided_at: datetime | None = None
    adr_notice_sent_at: datetime | None = None
    adr_notice_decision: str = ""
    deadlock_requested_at: datetime | None = None
    deadlock_sent_at: datetime | None = None
    deadlock_refused_at: datetime | None = None
    deadlock_position: str = ""
    reopened_from: str = ""  # the case this one follows (R7: a reply too late to reopen it)
    merged_into: str = ""  # the case that carries this one on, once merged
    # with the ADR scheme: its reference, the case file's date, its decision, the remedy
    adr_scheme_ref: str = ""
    adr_referred_at: datetime | None = None
    adr_case_file_due: date | None = None
    adr_case_file_reminded_at: datetime | None = None
    adr_outcome: str = ""  # an Outcome
    adr_outcome_at: datetime | None = None
    remedy: str = ""  # what the scheme's decision says we must do
    remedy_due: date | None = None
    remedy_told: str = ""  # the last reminder given: a RemedyStage
    remedy_done_at: datetime | None = None
    # support needs staff recorded (#needs, #support): the letters follow their format
    needs: tuple[Need, ...] = ()
    # a subject access request (UK GDPR Art. 12(3)): received, due, extended once, answered
    sar_requested_at: datetime | None = None
    sar_due: date | None = None
    sar_extended_at: datetime | None = None
    sar_told: str = ""  # the last reminder the DPO had: a RemedyStage (week, day, late)
    sar_done_at: datetime | None = None
    # the ADR letters (kinds, comma-separated) that bounced: a duty met only by post
    by_post_due: str = ""
    # beside the case's own fields: what the database knows of it now
    chased: bool = False  # the handlers were told of a chase of the pending request
    held: str = ""  # why automated mail to the customer is held back now ("" if it goes)

    @property
    def resolved(self) -> bool:
        return self.status == CaseStatus.RESOLVED

    @property
    def open(self) -> bool:
        """Worked by the rules' clocks: updates, escalation, R2, R6's automatic letter."""
        return self.status == CaseStatus.OPEN

    @property
    def silenced(self) -> bool:
        """Nobody is written to about it any more (not a complaint, or merged)."""
        return self.status in (CaseStatus.NOT_A_COMPLAINT, CaseStatus.MERGED)

    @property
    def remedy_pending(self) -> bool:
        return self.remedy_due is not None and self.remedy_done_at is None

    @property
    def sar_pending(self) -> bool:
        """A subject access request waits for its answer."""
        return self.sar_due is not None and self.sar_done_at is None

    @property
    def manager_level(self) -> bool:
        return self.level == Level.MANAGER

    @property
    def deadlock_pending(self) -> bool:
        """A customer's request waits for the staff's decision (or the window's end)."""
        requested, refused = self.deadlock_requested_at, self.deadlock_refused_at
        return (
            requested is not None
            and not self.deadlock_position  # no letter written yet, sent or held back
            and (refused is None or refused < requested)
        )

    @property
    def deadlock_held_back(self) -> bool:
        """The deadlock letter was written but held back (the managers were told)."""
        return self.deadlock_sent_at is None and bool(self.deadlock_position)


@dataclass(frozen=True)
class ReturnedLetter:
    """One of our letters a bounce names (by Message-ID, or by recipient and time)."""

    message_id: str
    kind: str
    to_address: str
    undelivered: bool  # an earlier bounce already named it


# the fields a Change may set; the others are what the database knows of the case beside it
CASE_FIELDS = frozenset(f.name for f in fields(CaseState)) - {"chased", "held"}
