"""The procedure's words: what a case, a message and a member of staff are, below every layer."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    AGENT = "agent"
    TEAM_LEADER = "team_leader"
    MANAGER = "manager"
    DPO = "dpo"  # the data protection officer: complaints about personal data, access requests


class StaffMember(Protocol):
    """Someone who works the cases from their own mail client ([[staff]] in the settings)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...  # a Role
    @property
    def phone(self) -> str: ...


class CaseStatus(StrEnum):
    """Where a complaint stands; only an open one is worked by the rules' clocks."""

    OPEN = "open"
    FINAL_RESPONSE = "final_response"  # the deadlock letter went: our final position
    WITH_ADR = "with_adr"  # the customer referred it to the ADR scheme
    RESOLVED = "resolved"
    NOT_A_COMPLAINT = "not_a_complaint"  # spam, a sales offer, a misdirected enquiry
    MERGED = "merged"  # joined another case (merged_into), which carries it on


class Level(StrEnum):
    TEAM_LEADER = "team_leader"
    MANAGER = "manager"


class MessageKind(StrEnum):
    """What a message is on a case, in and out."""

    COMPLAINT = "complaint"
    CUSTOMER_REPLY = "customer_reply"
    BOUNCE = "bounce"
    READ_RECEIPT = "read_receipt"  # in: a disposition notification ("Read: ...")
    REPORT = "report"  # in: a machine's report: abuse feedback (ARF), TLS, DMARC
    AUTO_REPLY = "auto_reply"
    MAILING_LIST = "mailing_list"
    NOTIFICATION = "notification"  # in: a service's mail from an address that takes no reply
    OWN_MAIL = "own_mail"
    THIRD_PARTY = "third_party"  # in: names a case, from neither its customer nor staff
    ACKNOWLEDGEMENT = "acknowledgement"
    STAFF_REPLY = "staff_reply"  # in: a staff member's reply; out: relayed to the customer
    STAFF_NOTE = "staff_note"  # in: an internal note (#note), relayed to nobody
    STAFF_UNVERIFIED = "staff_unverified"  # in: claims a staff address, not authenticated
    STAFF_NOTIFICATION = "staff_notification"  # out: a customer's message, to the handlers
    STAFF_CONFIRMATION = "staff_confirmation"  # out: what mailbot did on a staff command
    STAFF_ERROR = "staff_error"  # out: why a staff reply was refused
    SECURITY_ALERT = "security_alert"  # out: to the managers, about a forged staff message
    LETTER_HELD = "letter_held"  # out: to the managers, an ADR or deadlock letter held back
    BY_POST = "by_post"  # out: to the managers, a bounced ADR or deadlock letter to post
    UPDATE = "update"  # out: R3's daily (or agreed) update
    FIRST_RESPONSE_OVERDUE = "first_response_overdue"  # out: R2, to the team leaders
    ESCALATION_NOTICE = "escalation_notice"  # out: R4, to the managers and the customer
    ADR_NOTICE = "adr_notice"  # out: R5's 8-week letter
    DEADLOCK_LETTER = "deadlock_letter"  # out: R6
    DEADLOCK_REFUSAL = "deadlock_refusal"  # out: R6, why a requested letter will not go
    RESOLUTION = "resolution"  # out: R7
    MERGE_NOTICE = "merge_notice"  # out: to the customer, the one reference to use now
    ADR_CASE_FILE_DUE = "adr_case_file_due"  # out: to the handlers and managers
    REMEDY_DUE = "remedy_due"  # out: to the managers, the ADR scheme's remedy due or late
    SUBJECT_ACCESS_DUE = "subject_access_due"  # out: to the DPO, a request's due date, or late
    SUBJECT_ACCESS_EXTENDED = "subject_access_extended"  # out: to the customer, two more months
    FORMAT_COPY_NEEDED = "format_copy_needed"  # out: to the handlers, a letter to copy (braille)
    TOO_LARGE = "too_large"  # out: to a sender whose message is over limits.max_message_bytes
    ADMIN_ALERT = "admin_alert"  # out: to [alerts] to
    WEEKLY_DIGEST = "weekly_digest"  # out: to the managers, last week's figures ([reports])
    HELD_LIST = "held_list"  # out: to the team leaders, the messages held since the last one


class Disposition(StrEnum):
    """Where an inbound message stands."""

    RECEIVED = "received"  # raw bytes stored, not yet processed
    CASE = "case"  # on a case
    IGNORED = "ignored"  # recorded, on no case (a robot that names no case)
    QUARANTINED = "quarantined"
    HELD = "held"  # on no case: the mail platform called it spam or forged; staff may release it
