"""What is due on a case at a given moment (R2-R7): pure, with the moment as an argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.case import CaseState
from mailbot.procedure.vocabulary import CaseStatus


class Due(StrEnum):
    """Something the procedure requires now, named as the letter or act it causes."""

    FIRST_RESPONSE_OVERDUE = "first_response_overdue"  # R2: tell the team leaders
    UPDATE = "update"  # R3: a templated update to the customer
    ESCALATION = "escalation"  # R4: automatic escalation to Manager level
    ADR_NOTICE = "adr_notice"  # R5: the 8-week letter
    ADR_NOTICE_WITHHELD = "adr_notice_withheld"  # R5: an exception holds; record why
    DEADLOCK_LETTER = "deadlock_letter"  # R6: the decision window passed with no exception
    ADR_CASE_FILE_REMINDER = "adr_case_file_reminder"  # the scheme's case-file date is near
    REMEDY_REMINDER = "remedy_reminder"  # the scheme's remedy: due soon, or late
    SUBJECT_ACCESS_REMINDER = "subject_access_reminder"  # to the DPO: due soon, or late


class RemedyStage(StrEnum):
    """The reminders of a remedy the ADR scheme decided (and of a subject access request),
    in the order they go."""

    WEEK = "week"  # 7 days before it is due
    DAY = "day"  # the working day before
    LATE = "late"  # the day after, not done


@dataclass(frozen=True)
class TimeLimits:
    """The time limits the rules read (PROCEDURE.md's choices)."""

    update_cutoff: time = time(16, 0)
    auto_escalate_working_days: int = 10
    deadlock_decision_working_days: int = 1


@dataclass(frozen=True)
class Plan:
    """What is due now, and the next moment anything could fall due (None: nothing ever)."""

    due: tuple[Due, ...]
    next_due_at: datetime | None


EXCEPTIONS = ("vexatious", "out_of_scope")
# why R5's notice does not go, in the words its decision records ("not sent: ...")
WITHHELD = {
    "resolved": "the case is resolved",
    "vexatious": "the case is vexatious",
    "out_of_scope": "the case is out of scope",
    "final_response": (
        "the deadlock letter was our final response and already gave the ADR scheme, "
        "the 12 months and that it is free"
    ),
    "with_adr": "the complaint is with the ADR scheme",
    "not_a_complaint": "it is not a complaint",
    "merged": "the case was merged into another",
}


def adr_exception(case: CaseState) -> str | None:
    """Why the ADR notice must not go (R5), or None: a key of WITHHELD."""
    if case.status != CaseStatus.OPEN and case.status != CaseStatus.FINAL_RESPONSE:
        return case.status.value
    if case.deadlock_sent_at is not None:  # the deadlock letter is the ADR letter
        return "final_response"
    for flag in EXCEPTIONS:
        if flag in case.flags:
            return flag
    return None


def plan(case: CaseState, now: datetime, calendar: BusinessCalendar, limits: TimeLimits) -> Plan:
    """Everything due on a case at NOW, and when to look at it again."""
    due: list[Due] = []
    upcoming: list[datetime] = []

    def check(when: datetime | None, what: Due) -> None:
        if when is None:
            return
        if when <= now:
            due.append(what)
        else:
            upcoming.append(when)

    # R5 runs for resolved cases too: the case records why no notice went
    if case.adr_notice_decided_at is None:
        check(
            case.adr_date,
            Due.ADR_NOTICE_WITHHELD if adr_exception(case) else Due.ADR_NOTICE,
        )
    if case.status == CaseStatus.WITH_ADR:
        check(case_file_reminder_at(case, calendar), Due.ADR_CASE_FILE_REMINDER)
        due_stage, next_at = remedy_stage(case, now, calendar)
        if due_stage is not None:
            due.append(Due.REMEDY_REMINDER)
        if next_at is not None:
            upcoming.append(next_at)
    # the law's clock, whatever became of the complaint
    sar_stage, sar_next = subject_access_stage(case, now, calendar)
    if sar_stage is not None:
        due.append(Due.SUBJECT_ACCESS_REMINDER)
    if sar_next is not None:
        upcoming.append(sar_next)
    if case.open:
        check(first_response_overdue_at(case), Due.FIRST_RESPONSE_OVERDUE)
        check(auto_escalation_at(case, calendar, limits), Due.ESCALATION)
        check(deadlock_letter_at(case, calendar, limits), Due.DEADLOCK_LETTER)
        update_at = next_update_at(case, calendar, limits)
        if update_at is not None and update_at <= now:
            if in_update_window(now, calendar):
                due.append(Due.UPDATE)
            else:  # late (the daemon was down): wait for the next working day's opening
                upcoming.append(calendar.next_opening(now))
        elif update_at is not None:
            upcoming.append(update_at)
    return Plan(tuple(due), min(upcoming) if upcoming else None)


def case_file_reminder_at(case: CaseState, calendar: BusinessCalendar) -> datetime | None:
    """The ADR scheme's case-file date: the opening of the working day before it (at once
    when the scheme's date leaves less)."""
    due = case.adr_case_file_due
    if due is None or case.adr_case_file_reminded_at is not None or case.adr_outcome:
        return None
    return calendar.opening_of(calendar.working_day_before(due))


def remedy_moments(due: date, calendar: BusinessCalendar) -> dict[RemedyStage, datetime]:
    """When each reminder of a remedy due on DUE goes: at a working day's opening."""
    return {
        RemedyStage.WEEK: calendar.opening_of(due - timedelta(days=7)),
        RemedyStage.DAY: calendar.opening_of(calendar.working_day_before(due)),
        RemedyStage.LATE: calendar.opening_of(due + timedelta(days=1)),
    }


def remedy_stage(
    case: CaseState, now: datetime, calendar: BusinessCalendar
) -> tuple[RemedyStage | None, datetime | None]:
    """The remedy's reminder due at NOW (the latest come, so a late one is not preceded by
    stale ones), and when the next one goes."""
    if not case.remedy_pending:
        return None, None
    return reminder_stage(case.remedy_due, case.remedy_told, now, calendar)


def subject_access_stage(
    case: CaseState, now: datetime, calendar: BusinessCalendar
) -> tuple[RemedyStage | None, datetime | None]:
    """A subject access request's reminder to the DPO due at NOW (7 days and the working
    day before its due date, late the day after), and when the next one goes."""
    if not case.sar_pending:
        return None, None
    return reminder_stage(case.sar_due, case.sar_told, now, calendar)


def reminder_stage(
    due_on: date | None, told_stage: str, now: datetime, calendar: BusinessCalendar
) -> tuple[RemedyStage | None, datetime | None]:
    """Of the reminders of something due on DUE_ON (the last told: TOLD_STAGE), the one
    due at NOW, the latest come, and when the next one goes."""
    if due_on is None:
        return None, None
    stages = list(RemedyStage)
    told = stages.index(RemedyStage(told_stage)) if told_stage else -1
    moments = remedy_moments(due_on, calendar)
    ahead = stages[told + 1 :]
    come = [stage for stage in ahead if moments[stage] <= now]
    due = come[-1] if come else None
    after = ahead[ahead.index(due) + 1 :] if due is not None else ahead
    later = [moments[stage] for stage in after if moments[stage] > now]
    return due, min(later) if later else None


def first_response_overdue_at(case: CaseState) -> datetime | None:
    """R2: when to tell the team leaders nobody has answered the customer."""
    if case.first_staff_reply_at or case.first_response_overdue_sent_at:
        return None
    return case.first_response_due


def auto_escalation_at(
    case: CaseState, calendar: BusinessCalendar, limits: TimeLimits
) -> datetime | None:
    """R4: when a case still at Team Leader level goes to the managers."""
    if case.manager_level or limits.auto_escalate_working_days <= 0:
        return None
    days = calendar.working_day_length * limits.auto_escalate_working_days
    return calendar.add_business_time(case.received_at, days)


def deadlock_decision_due(
    requested_at: datetime, calendar: BusinessCalendar, limits: TimeLimits
) -> datetime:
    """R6: the end of the staff's window to refuse a customer's request."""
    window = calendar.working_day_length * limits.deadlock_decision_working_days
    return calendar.add_business_time(requested_at, window)


def deadlock_letter_at(
    case: CaseState, calendar: BusinessCalendar, limits: TimeLimits
) -> datetime | None:
    """R6: when a pending request becomes a letter, unless staff recorded an exception."""
    requested = case.deadlock_requested_at
    if requested is None or case.deadlock_sent_at is not None or case.deadlock_held_back:
        return None
    if case.deadlock_refused_at is not None and case.deadlock_refused_at >= requested:
        return None
    if any(flag in case.flags for flag in EXCEPTIONS):
        return None
    return deadlock_decision_due(requested, calendar, limits)


def next_update_at(
    case: CaseState, calendar: BusinessCalendar, limits: TimeLimits
) -> datetime | None:
    """R3: the cut-off of the working day by which the customer must have heard from us.

    The customer hears from us every INTERVAL working days after the last thing we sent
    (the acknowledgement, a reply, a letter, an update), never on the day of receipt.
    """
    interval = case.update_interval_days
    if interval <= 0:
        return None
    zone = calendar.zone
    last = case.last_customer_contact_at or case.received_at
    start = max(last, case.received_at).astimezone(zone).date()
    day = calendar.working_days_after(start, interval)
    return datetime.combine(day, limits.update_cutoff, tzinfo=zone)


def in_update_window(now: datetime, calendar: BusinessCalendar) -> bool:
    """Updates go on a working day, from opening until midnight (not overnight, not weekends)."""
    local = now.astimezone(calendar.zone)
    return calendar.is_working_day(local.date()) and local.time() >= calendar.opening


# Ofcom's General Condition C4: how long a communications provider's customer waits before
# they may take a complaint to ADR, and from when (8 weeks before 8 April 2026, then 6)
OFCOM_ADR_WAIT_WEEKS = ((date(2026, 4, 8), 6),)
OFCOM_ADR_WAIT_BEFORE = 8


def ofcom_adr_wait_weeks(on: date) -> int:
    """The ADR wait in weeks that Ofcom's rule sets for communications providers ON a day."""
    weeks = OFCOM_ADR_WAIT_BEFORE
    for since, wait in OFCOM_ADR_WAIT_WEEKS:
        if on >= since:
            weeks = wait
    return weeks


def ofcom_words(weeks: int) -> str:
    """Ofcom's rule of WEEKS in words: "6 weeks from 8 April 2026"."""
    since = [d for d, wait in OFCOM_ADR_WAIT_WEEKS if wait == weeks]
    return f"{weeks} weeks" + (f" from {since[-1].day} {since[-1]:%B %Y}" if since else "")
