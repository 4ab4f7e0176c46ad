"""The tables: cases, messages received and sent, events, the mailbox checkpoint."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import DateTime, Enum, Index, LargeBinary, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from mailbot.procedure.vocabulary import CaseStatus as CaseStatus
from mailbot.procedure.vocabulary import Disposition as Disposition
from mailbot.procedure.vocabulary import Level as Level
from mailbot.procedure.vocabulary import MessageKind as MessageKind


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, whatever the database keeps.

    PostgreSQL keeps `timestamptz` and is given aware UTC datetimes (a naive one would be read
    in the session's time zone); SQLite keeps text, given naive UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None if nullable else ..., sa_type=UTCDateTime, nullable=nullable, index=index
    )


def _choice(kind: type[StrEnum], default: Any = ...) -> Any:
    """An enum column kept as its members' names in a VARCHAR on every database.

    Not a PostgreSQL ENUM type: a new member then needs no migration on any database.
    """
    return Field(default=default, sa_type=cast(Any, Enum(kind, native_enum=False, length=64)))


class OutboundStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"  # never sent: the address bounced, the cap, an address the server cannot take


class Case(SQLModel, table=True):
    """One complaint."""

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True, index=True)
    customer_email: str = Field(index=True)
    customer_addresses: str = ""  # comma-separated: other addresses staff accepted as theirs
    customer_name: str
    subject: str
    received_at: datetime = _when()
    status: CaseStatus = _choice(CaseStatus, CaseStatus.OPEN)
    level: Level = _choice(Level, Level.TEAM_LEADER)
    details_found: str = ""  # R1 details found, comma-separated
    first_response_due: datetime = _when()
    adr_date: datetime = _when()  # from when the customer may go to the ADR scheme
    update_interval_days: int = 1  # R3: 0 when the customer agreed to no routine updates
    update_interval_agreed_by: str = ""
    flags: str = ""  # comma-separated: vexatious, out_of_scope
    resolved_at: datetime | None = _when(nullable=True)
    resolution_summary: str = ""
    escalated_at: datetime | None = _when(nullable=True)
    first_staff_reply_at: datetime | None = _when(nullable=True)
    reopened_from: str = ""  # the ref of the resolved case this one follows
    merged_into: str = Field(default="", index=True)  # the case that carries this one on
    # with the ADR scheme (#adr, #adr-outcome, #remedy-done)
    adr_scheme_ref: str = ""
    adr_referred_at: datetime | None = _when(nullable=True)
    adr_case_file_due: date | None = None
    adr_case_file_reminded_at: datetime | None = _when(nullable=True)
    adr_outcome: str = ""  # upheld, partly, not_upheld
    adr_outcome_at: datetime | None = _when(nullable=True)
    remedy: str = ""
    remedy_due: date | None = None
    remedy_told: str = ""  # the last reminder that went: week, day, late
    remedy_done_at: datetime | None = _when(nullable=True)
    # support needs staff recorded (#needs, #support): a JSON list of {need, note,
    # recorded_by, recorded_at}; personal data, emptied by erasure
    needs: str = ""
    # a subject access request (UK GDPR Art. 12(3)): the DPO's clock
    sar_requested_at: datetime | None = _when(nullable=True)
    sar_due: date | None = None
    sar_extended_at: datetime | None = _when(nullable=True)
    sar_told: str = ""  # the last reminder the DPO had: week, day, late
    sar_done_at: datetime | None = _when(nullable=True)
    last_customer_contact_at: datetime | None = _when(nullable=True)  # anything sent to them
    first_response_overdue_sent_at: datetime | None = _when(nullable=True)
    adr_notice_decided_at: datetime | None = _when(nullable=True)
    adr_notice_sent_at: datetime | None = _when(nullable=True)
    adr_notice_decision: str = ""  # why the notice was, or was not, sent
    deadlock_requested_at: datetime | None = _when(nullable=True)
    deadlock_sent_at: datetime | None = _when(nullable=True)
    deadlock_refused_at: datetime | None = _when(nullable=True)
    deadlock_position: str = ""  # the provider's final position, as the letter said it
    next_due_at: datetime | None = _when(nullable=True, index=True)  # the tick's one index
    set_aside_reason: str = ""  # why the tick stopped working this case (an error), until fixed
    # UK GDPR erasure (mailbot erase / purge): the customer's data gone, the timers kept
    personal_data_erased_at: datetime | None = _when(nullable=True)
    # the ADR letters that bounced and must go by post (comma-separated kinds), until
    # #sent-by-post records it
    by_post_due: str = ""

    def addresses(self) -> set[str]:
        """Every address that is the customer's: the case's own and those staff accepted."""
        return {self.customer_email} | {a for a in self.customer_addresses.split(",") if a}

    def add_address(self, address: str) -> None:
        others = {a for a in self.customer_addresses.split(",") if a} | {address}
        self.customer_addresses = ",".join(sorted(others - {self.customer_email}))

    def flag_set(self) -> set[str]:
        return {f for f in self.flags.split(",") if f}

    def add_flag(self, flag: str) -> None:
        self.flags = ",".join(sorted(self.flag_set() | {flag}))


class Inbound(SQLModel, table=True):
    """A message received: raw bytes first, what it turned out to be once processed."""

    __table_args__ = (
        UniqueConstraint("message_id", "sha256"),
        # one message delivered twice (another route, an alias) differs only in trace headers
        Index("ix_inbound_content", "message_id", "content_sha256", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(index=True)
    sha256: str  # of the raw bytes as received
    content_sha256: str  # of the message without its trace headers: the duplicate key
    size: int  # of the raw bytes, which are kept apart (InboundRaw)
    received_at: datetime = _when()
    source: str  # "imap UIDVALIDITY/UID" or "file NAME"
    disposition: Disposition = _choice(Disposition, Disposition.RECEIVED)
    reason: str = ""
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    kind: MessageKind | None = _choice(MessageKind, None)
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    in_reply_to: str = ""  # space-separated "<...>" ids
    references: str = ""
    text: str = ""
    parser: str = ""
    released_by: str = ""  # held, then released by this member of staff
    listed_at: datetime | None = _when(nullable=True)  # held, and in the team leaders' list


class InboundRaw(SQLModel, table=True):
    """A received message's bytes, exactly as they came, stored before anything reads them.

    Apart from the inbound row: SQLite rewrites a row whole when any column changes, so the
    bytes would be written out again each time the message is processed or erased.
    """

    __tablename__ = "inbound_raw"

    inbound_id: int = Field(primary_key=True, foreign_key="inbound.id")
    raw: bytes = Field(sa_type=LargeBinary)


class Attachment(SQLModel, table=True):
    """An attachment of an inbound message, under a safe file name."""

    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int = Field(foreign_key="inbound.id", index=True)
    filename: str
    content_type: str
    size: int
    payload: bytes = Field(sa_type=LargeBinary)


class Outbound(SQLModel, table=True):
    """A message to send: queued with the case change, its bytes and Message-ID fixed then."""

    __table_args__ = (Index("ix_outbound_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    kind: MessageKind = _choice(MessageKind)
    message_id: str = Field(unique=True, index=True)
    to_address: str = Field(index=True)
    subject: str
    raw: bytes = Field(sa_type=LargeBinary)
    status: OutboundStatus = _choice(OutboundStatus, OutboundStatus.QUEUED)
    queued_at: datetime = _when()
    next_attempt_at: datetime = _when()
    attempts: int = 0
    first_refused_at: datetime | None = _when(nullable=True)  # give_up_after counts from here
    last_error: str = ""  # the server's last refusal, or why the letter is held back
    smtp_reply: str = ""
    sent_at: datetime | None = _when(nullable=True)
    sha256: str = ""  # of the exact bytes given to the SMTP server: proof of what was sent
    undelivered_at: datetime | None = _when(nullable=True)  # a bounce named it
    undelivered_reason: str = ""  # what the bounce said


class Event(SQLModel, table=True):
    """A decision on a case (R8): who or which rule, when, what, why."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    at: datetime = _when()
    actor: str  # the address that wrote (staff, customer, third party), or "mailbot"
    action: str
    detail: str = ""


class ChainLink(SQLModel, table=True):
    """One record of a case's history in its tamper-evident chain (mail/chain.py): the
    record's digest and the hash that ties it to the link before, in the order written."""

    __tablename__ = "chain_link"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)  # one chain a case: never a fork

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    seq: int  # 1, 2, 3 ... on the case
    record: str  # "in", "out", "event", "start"
    record_id: int | None = None  # the row's id in inbound, outbound or event
    at: datetime = _when()
    kind: str
    salt: str = ""  # "" once the record's content was erased
    digest: str
    hash: str


class Checkpoint(SQLModel, table=True):
    """How far the mailbox has been read: per folder, UIDVALIDITY and the last UID."""

    folder: str = Field(primary_key=True)
    uidvalidity: int
    last_uid: int


class RefCounter(SQLModel, table=True):
    """The last case number issued in a year."""

    year: int = Field(primary_key=True)
    last: int


class DaemonLock(SQLModel, table=True):
    """Who processes the mailbox: one daemon at a time (host:pid, and when it last said so)."""

    name: str = Field(primary_key=True)
    holder: str = ""
    heartbeat: float = 0.0  # wall-clock seconds: infrastructure, not the procedure's time


class Suppression(SQLModel, table=True):
    """An address that bounced permanently: no automated mail until staff write to it again.

    Lifting it is recorded (lifted_at, lifted_by), not a deleted row (R8).
    """

    address: str = Field(primary_key=True)
    reason: str
    since: datetime = _when()
    case_id: int | None = Field(default=None, foreign_key="case.id")
    lifted_at: datetime | None = _when(nullable=True)
    lifted_by: str = ""


class HeldList(SQLModel, table=True):
    """A list of held messages to the team leaders, at a working day's opening or update
    cut-off: the row is the claim, so each goes at most once whatever daemons share the
    database."""

    due_at: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    queued_at: datetime = _when()
    messages: int = 0  # how many it listed (0: none was held, nothing went)


class WeeklyDigest(SQLModel, table=True):
    """A week whose digest went to the managers: the row is the claim, so it goes once per
    week whatever restarts or how many daemons share the database."""

    week_of: date = Field(primary_key=True)  # the Monday, in the business time zone
    queued_at: datetime = _when()
