"""What the procedure makes due on a case at a given moment (R2-R6), read from pure rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.case import CaseState
from mailbot.procedure.rules import (
    Due,
    TimeLimits,
    auto_escalation_at,
    deadlock_letter_at,
    next_update_at,
    plan,
)
from mailbot.procedure.vocabulary import CaseStatus, Level

LONDON = ZoneInfo("Europe/London")
CALENDAR = BusinessCalendar()
POLICY = TimeLimits()
MINUTE = timedelta(minutes=1)


def london(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def new_case(received: datetime) -> CaseState:
    """A case as intake leaves it: acknowledged the same minute, daily updates, no reply yet."""
    return CaseState(
        ref="CMP-2026-00001",
        subject="Broadband drops",
        customer_email="pat@example.com",
        customer_name="Pat Example",
        received_at=received,
        flags=frozenset(),
        update_interval_days=1,
        last_customer_contact_at=received,
        first_response_due=CALENDAR.first_response_due(received),
        first_staff_reply_at=None,
        first_response_overdue_sent_at=None,
        adr_date=received + timedelta(days=56),
        adr_notice_decided_at=None,
        deadlock_requested_at=None,
        deadlock_sent_at=None,
        deadlock_refused_at=None,
    )


def quiet_case(received: datetime) -> CaseState:
    """A case where nothing but the rule under test can fall due: answered at once,
    already at Manager level, routine updates stopped by agreement."""
    return replace(
        new_case(received),
        first_staff_reply_at=received,
        level=Level.MANAGER,
        update_interval_days=0,
    )


def due_at(timers: CaseState, now: datetime) -> tuple[Due, ...]:
    return plan(timers, now, CALENDAR, POLICY).due


def next_due(timers: CaseState, now: datetime) -> datetime | None:
    return plan(timers, now, CALENDAR, POLICY).next_due_at


# Mon 2 Nov 2026, a week with no bank holiday either side
MONDAY = london(2026, 11, 2, 10)


def test_the_dates_used_fall_on_the_weekdays_the_tests_say() -> None:
    assert MONDAY.strftime("%A") == "Monday"
    assert date(2026, 11, 6).strftime("%A") == "Friday"
    assert date(2026, 12, 24).strftime("%A") == "Thursday"
    assert date(2026, 12, 29).strftime("%A") == "Tuesday"
    assert date(2026, 3, 30).strftime("%A") == "Monday"
    assert date(2026, 12, 27).strftime("%A") == "Sunday"
    assert CALENDAR.is_holiday(date(2026, 12, 25))
    assert CALENDAR.is_holiday(date(2026, 12, 28))


# R2: the first human reply is tracked against the first-response due time


def test_r2_team_leaders_are_told_exactly_when_the_first_response_falls_overdue() -> None:
    case = new_case(MONDAY)
    assert case.first_response_due == london(2026, 11, 3, 10)
    assert Due.FIRST_RESPONSE_OVERDUE not in due_at(case, case.first_response_due - MINUTE)
    assert Due.FIRST_RESPONSE_OVERDUE in due_at(case, case.first_response_due)


def test_r2_the_first_response_due_time_is_the_next_moment_to_look_again() -> None:
    case = new_case(MONDAY)
    assert next_due(case, MONDAY + MINUTE) == london(2026, 11, 3, 10)


def test_r2_no_overdue_notice_once_staff_have_replied() -> None:
    case = replace(new_case(MONDAY), first_staff_reply_at=london(2026, 11, 2, 15))
    assert Due.FIRST_RESPONSE_OVERDUE not in due_at(case, london(2026, 11, 3, 10))
    assert Due.FIRST_RESPONSE_OVERDUE not in due_at(case, london(2026, 11, 5, 10))


def test_r2_the_overdue_notice_is_sent_only_once() -> None:
    case = replace(new_case(MONDAY), first_response_overdue_sent_at=london(2026, 11, 3, 10))
    assert Due.FIRST_RESPONSE_OVERDUE not in due_at(case, london(2026, 11, 3, 10))
    assert Due.FIRST_RESPONSE_OVERDUE not in due_at(case, london(2026, 11, 4, 12))


def test_r2_no_overdue_notice_for_a_resolved_case() -> None:
    case = replace(new_case(MONDAY), status=CaseStatus.RESOLVED)
    assert Due.FIRST_RESPONSE_OVERDUE not in due_at(case, london(2026, 11, 3, 10))


# R3: an update on every working day after the day of receipt, by the 16:00 cut-off


def test_r3_no_update_on_the_day_of_receipt_the_first_is_due_next_working_day_at_4pm() -> None:
    case = new_case(MONDAY)
    assert next_update_at(case, CALENDAR, POLICY) == london(2026, 11, 3, 16)
    assert Due.UPDATE not in due_at(case, london(2026, 11, 2, 16))
    assert Due.UPDATE not in due_at(case, london(2026, 11, 2, 23, 59))


def test_r3_update_is_due_at_the_cutoff_not_a_minute_before() -> None:
    case = new_case(MONDAY)
    assert Due.UPDATE not in due_at(case, london(2026, 11, 3, 15, 59))
    assert Due.UPDATE in due_at(case, london(2026, 11, 3, 16))


def test_r3_a_staff_reply_that_day_counts_as_the_update() -> None:
    reply = london(2026, 11, 3, 11)
    case = replace(new_case(MONDAY), first_staff_reply_at=reply, last_customer_contact_at=reply)
    assert Due.UPDATE not in due_at(case, london(2026, 11, 3, 16))
    assert Due.UPDATE not in due_at(case, london(2026, 11, 3, 23, 59))
    assert next_due(case, london(2026, 11, 3, 16)) == london(2026, 11, 4, 16)
    assert Due.UPDATE not in due_at(case, london(2026, 11, 4, 15, 59))
    assert Due.UPDATE in due_at(case, london(2026, 11, 4, 16))


def test_r3_an_agreed_interval_of_three_working_days_counts_from_the_last_contact() -> None:
    reply = london(2026, 11, 3, 11)  # Tuesday
    case = replace(
        new_case(MONDAY),
        update_interval_days=3,
        first_staff_reply_at=reply,
        last_customer_contact_at=reply,
    )
    assert next_update_at(case, CALENDAR, POLICY) == london(2026, 11, 6, 16)  # Friday
    assert Due.UPDATE not in due_at(case, london(2026, 11, 4, 16))
    assert Due.UPDATE not in due_at(case, london(2026, 11, 5, 16))
    assert Due.UPDATE in due_at(case, london(2026, 11, 6, 16))


def test_r3_no_routine_updates_when_the_customer_agreed_to_none() -> None:
    case = replace(new_case(MONDAY), update_interval_days=0)
    assert next_update_at(case, CALENDAR, POLICY) is None
    for day in range(3, 28):
        assert Due.UPDATE not in due_at(case, london(2026, 11, day, 16))


def test_r3_no_updates_after_resolution() -> None:
    case = replace(new_case(MONDAY), status=CaseStatus.RESOLVED)
    for day in range(3, 28):
        assert Due.UPDATE not in due_at(case, london(2026, 11, day, 16))


def test_r3_contact_on_a_friday_makes_the_next_update_due_monday_at_4pm() -> None:
    friday = london(2026, 11, 6, 11)
    case = replace(new_case(MONDAY), first_staff_reply_at=friday, last_customer_contact_at=friday)
    assert next_update_at(case, CALENDAR, POLICY) == london(2026, 11, 9, 16)
    assert Due.UPDATE not in due_at(case, london(2026, 11, 7, 16))  # Saturday
    assert Due.UPDATE not in due_at(case, london(2026, 11, 8, 16))  # Sunday
    assert Due.UPDATE in due_at(case, london(2026, 11, 9, 16))


def test_r3_no_updates_over_christmas_bank_holidays_next_is_tuesday_29_december() -> None:
    received = london(2026, 12, 21, 10)
    contact = london(2026, 12, 24, 11)  # Thursday; Fri 25 and Mon 28 are bank holidays
    case = replace(
        new_case(received), first_staff_reply_at=contact, last_customer_contact_at=contact
    )
    assert next_update_at(case, CALENDAR, POLICY) == london(2026, 12, 29, 16)
    for day in (25, 26, 27, 28):
        assert Due.UPDATE not in due_at(case, london(2026, 12, day, 16))
    assert Due.UPDATE in due_at(case, london(2026, 12, 29, 16))


def test_r3_an_update_missed_while_the_daemon_was_down_waits_for_monday_opening() -> None:
    thursday = london(2026, 11, 5, 11)
    case = replace(
        new_case(MONDAY), first_staff_reply_at=thursday, last_customer_contact_at=thursday
    )
    assert next_update_at(case, CALENDAR, POLICY) == london(2026, 11, 6, 16)  # Friday, missed
    saturday = london(2026, 11, 7, 12)
    assert due_at(case, saturday) == ()
    assert next_due(case, saturday) == london(2026, 11, 9, 9)  # Monday opening
    assert due_at(case, london(2026, 11, 8, 23, 59)) == ()  # Sunday night
    assert due_at(case, london(2026, 11, 9, 8, 59)) == ()  # Monday before opening
    assert due_at(case, london(2026, 11, 9, 9)) == (Due.UPDATE,)


def test_r3_the_update_cutoff_is_4pm_london_time_either_side_of_the_clocks_going_forward() -> None:
    received = london(2026, 3, 23, 10)  # Monday, GMT; clocks go forward Sun 29 March
    wednesday = london(2026, 3, 25, 11)
    before = replace(
        new_case(received), first_staff_reply_at=wednesday, last_customer_contact_at=wednesday
    )
    assert next_update_at(before, CALENDAR, POLICY) == utc(2026, 3, 26, 16)  # GMT: 16:00 UTC
    assert Due.UPDATE not in due_at(before, utc(2026, 3, 26, 15, 59))
    assert Due.UPDATE in due_at(before, utc(2026, 3, 26, 16))

    friday = london(2026, 3, 27, 11)
    after = replace(
        new_case(received), first_staff_reply_at=friday, last_customer_contact_at=friday
    )
    due = next_update_at(after, CALENDAR, POLICY)
    assert due == utc(2026, 3, 30, 15)  # BST: 16:00 London is 15:00 UTC
    assert due is not None and due.astimezone(LONDON).hour == 16
    assert Due.UPDATE not in due_at(after, utc(2026, 3, 30, 14, 59))
    assert Due.UPDATE in due_at(after, utc(2026, 3, 30, 15))


# R4: automatic escalation after 10 working days of business time


def test_r4_an_unresolved_case_is_escalated_after_ten_working_days_of_business_time() -> None:
    # Mon 2 Nov 10:00 + 85 business hours: 7h30 that Monday, 34h Tue-Fri,
    # 42h30 the next week, 1h on Mon 16 Nov -> 10:00
    case = new_case(MONDAY)
    assert auto_escalation_at(case, CALENDAR, POLICY) == london(2026, 11, 16, 10)
    assert Due.ESCALATION not in due_at(case, london(2026, 11, 16, 9, 59))
    assert Due.ESCALATION in due_at(case, london(2026, 11, 16, 10))


def test_r4_no_automatic_escalation_at_manager_level() -> None:
    case = replace(new_case(MONDAY), level=Level.MANAGER)
    assert auto_escalation_at(case, CALENDAR, POLICY) is None
    assert Due.ESCALATION not in due_at(case, london(2026, 11, 20, 10))


def test_r4_no_automatic_escalation_of_a_resolved_case() -> None:
    case = replace(new_case(MONDAY), status=CaseStatus.RESOLVED)
    assert Due.ESCALATION not in due_at(case, london(2026, 11, 20, 10))


# R5: the ADR notice at receipt + 8 weeks, whether or not in business time

SUNDAY_3AM = london(2026, 11, 1, 3)  # Sunday; + 56 days is Sunday 27 Dec 03:00 (both GMT)


def test_r5_the_adr_notice_is_due_at_eight_weeks_to_the_minute_even_on_a_sunday_night() -> None:
    case = quiet_case(SUNDAY_3AM)
    assert case.adr_date == london(2026, 12, 27, 3)
    assert due_at(case, london(2026, 12, 27, 2, 59)) == ()
    assert next_due(case, london(2026, 12, 27, 2, 59)) == london(2026, 12, 27, 3)
    assert due_at(case, london(2026, 12, 27, 3)) == (Due.ADR_NOTICE,)


def test_r5_the_adr_notice_goes_at_the_first_run_after_the_moment_if_the_daemon_was_down() -> None:
    case = quiet_case(SUNDAY_3AM)
    assert due_at(case, london(2026, 12, 30, 14)) == (Due.ADR_NOTICE,)


def test_r5_the_adr_moment_is_read_from_the_case_not_the_policy() -> None:
    case = replace(quiet_case(SUNDAY_3AM), adr_date=london(2026, 12, 1, 12, 34))
    slow = TimeLimits(auto_escalate_working_days=50, deadlock_decision_working_days=5)
    assert plan(case, london(2026, 12, 1, 12, 33), CALENDAR, slow).due == ()
    assert plan(case, london(2026, 12, 1, 12, 34), CALENDAR, slow).due == (Due.ADR_NOTICE,)


@pytest.mark.parametrize(
    "case",
    [
        replace(quiet_case(SUNDAY_3AM), status=CaseStatus.RESOLVED),
        replace(quiet_case(SUNDAY_3AM), flags=frozenset({"vexatious"})),
        replace(quiet_case(SUNDAY_3AM), flags=frozenset({"out_of_scope"})),
    ],
    ids=["resolved", "vexatious", "out_of_scope"],
)
def test_r5_the_notice_is_withheld_when_an_exception_holds(case: CaseState) -> None:
    assert due_at(case, london(2026, 12, 27, 3) - MINUTE) == ()
    assert due_at(case, london(2026, 12, 27, 3)) == (Due.ADR_NOTICE_WITHHELD,)


def test_r5_nothing_once_the_adr_decision_is_recorded() -> None:
    for resolved in (False, True):
        case = replace(
            quiet_case(SUNDAY_3AM),
            status=CaseStatus.RESOLVED if resolved else CaseStatus.OPEN,
            adr_notice_decided_at=london(2026, 12, 27, 3),
        )
        assert due_at(case, london(2026, 12, 27, 3)) == ()
        assert due_at(case, london(2027, 3, 1, 12)) == ()
        assert next_due(case, london(2026, 12, 27, 3)) is None


def test_r5_a_resolved_case_still_records_the_withheld_decision_at_eight_weeks() -> None:
    case = replace(new_case(MONDAY), status=CaseStatus.RESOLVED)
    eight_weeks = london(2026, 12, 28, 10)
    assert case.adr_date == eight_weeks
    assert due_at(case, london(2026, 11, 20, 12)) == ()
    assert next_due(case, london(2026, 11, 20, 12)) == eight_weeks
    assert due_at(case, eight_weeks - MINUTE) == ()
    assert due_at(case, eight_weeks) == (Due.ADR_NOTICE_WITHHELD,)


# R6: a customer's deadlock request becomes a letter after one working day


FRIDAY_4PM = london(2026, 11, 20, 16)


def requested(at: datetime = FRIDAY_4PM) -> CaseState:
    return replace(quiet_case(london(2026, 11, 16, 10)), deadlock_requested_at=at)


def test_r6_a_request_at_4pm_friday_becomes_a_letter_at_4pm_monday() -> None:
    case = requested()
    assert deadlock_letter_at(case, CALENDAR, POLICY) == london(2026, 11, 23, 16)
    assert due_at(case, london(2026, 11, 23, 15, 59)) == ()
    assert next_due(case, london(2026, 11, 23, 15, 59)) == london(2026, 11, 23, 16)
    assert due_at(case, london(2026, 11, 23, 16)) == (Due.DEADLOCK_LETTER,)


def test_r6_no_letter_when_staff_refused_after_the_request() -> None:
    case = replace(requested(), deadlock_refused_at=london(2026, 11, 23, 11))
    assert deadlock_letter_at(case, CALENDAR, POLICY) is None
    assert Due.DEADLOCK_LETTER not in due_at(case, london(2026, 11, 23, 16))
    assert Due.DEADLOCK_LETTER not in due_at(case, london(2026, 12, 1, 16))


def test_r6_a_new_request_after_an_earlier_refusal_is_due_again() -> None:
    case = replace(
        requested(london(2026, 11, 24, 10)),  # Tuesday
        deadlock_refused_at=london(2026, 11, 23, 11),
    )
    assert deadlock_letter_at(case, CALENDAR, POLICY) == london(2026, 11, 25, 10)
    assert Due.DEADLOCK_LETTER not in due_at(case, london(2026, 11, 25, 9, 59))
    assert Due.DEADLOCK_LETTER in due_at(case, london(2026, 11, 25, 10))


@pytest.mark.parametrize("flag", ["vexatious", "out_of_scope"])
def test_r6_no_automatic_letter_when_the_complaint_is_flagged(flag: str) -> None:
    case = replace(requested(), flags=frozenset({flag}))
    assert deadlock_letter_at(case, CALENDAR, POLICY) is None
    assert Due.DEADLOCK_LETTER not in due_at(case, london(2026, 11, 23, 16))


def test_r6_the_letter_is_sent_once_per_case() -> None:
    case = replace(requested(), deadlock_sent_at=london(2026, 11, 23, 16))
    assert Due.DEADLOCK_LETTER not in due_at(case, london(2026, 11, 23, 16))
    again = replace(case, deadlock_requested_at=london(2026, 11, 25, 10))
    assert Due.DEADLOCK_LETTER not in due_at(again, london(2026, 11, 30, 10))


def test_r6_a_letter_held_back_is_decided_and_not_due_again() -> None:
    case = replace(
        requested(), deadlock_position="Our final position."
    )  # the managers were told instead
    assert deadlock_letter_at(case, CALENDAR, POLICY) is None
    assert Due.DEADLOCK_LETTER not in due_at(case, london(2026, 11, 23, 16))
    assert Due.DEADLOCK_LETTER not in due_at(case, london(2026, 11, 24, 16))


# Planning: when to look again, and doing what is due only once


def test_next_due_at_is_the_earliest_upcoming_moment() -> None:
    reply = london(2026, 11, 2, 11)
    case = replace(
        new_case(MONDAY),
        first_staff_reply_at=reply,
        last_customer_contact_at=reply,
        deadlock_requested_at=london(2026, 11, 2, 11, 30),
    )
    now = london(2026, 11, 2, 12)
    result = plan(case, now, CALENDAR, POLICY)
    assert result.due == ()
    assert result.next_due_at == london(2026, 11, 3, 11, 30)  # the deadlock window ends
    later = [
        london(2026, 11, 3, 16),  # update
        london(2026, 11, 16, 10),  # escalation
        case.adr_date,
    ]
    assert result.next_due_at is not None and all(result.next_due_at < t for t in later)


def test_next_due_at_with_no_reply_yet_is_the_first_response_deadline() -> None:
    assert next_due(new_case(MONDAY), london(2026, 11, 2, 12)) == london(2026, 11, 3, 10)


def test_planning_twice_at_the_same_moment_gives_the_same_plan() -> None:
    case = new_case(MONDAY)
    for now in (london(2026, 11, 2, 12), london(2026, 11, 3, 16), london(2026, 11, 16, 10)):
        assert plan(case, now, CALENDAR, POLICY) == plan(case, now, CALENDAR, POLICY)


def test_once_the_update_is_sent_nothing_is_due_at_the_same_moment() -> None:
    reply = london(2026, 11, 2, 11)
    case = replace(new_case(MONDAY), first_staff_reply_at=reply, last_customer_contact_at=reply)
    now = london(2026, 11, 3, 16)
    assert due_at(case, now) == (Due.UPDATE,)
    sent = replace(case, last_customer_contact_at=now)
    assert due_at(sent, now) == ()
    assert next_due(sent, now) == london(2026, 11, 4, 16)


def test_once_the_adr_notice_is_sent_nothing_is_due_at_the_same_moment() -> None:
    case = quiet_case(SUNDAY_3AM)
    now = london(2026, 12, 27, 3)
    assert due_at(case, now) == (Due.ADR_NOTICE,)
    sent = replace(case, adr_notice_decided_at=now)
    assert due_at(sent, now) == ()
    assert next_due(sent, now) is None


def test_once_each_due_thing_is_done_nothing_is_due_at_the_same_moment() -> None:
    case = replace(new_case(MONDAY), deadlock_requested_at=london(2026, 11, 2, 11))
    now = london(2026, 11, 16, 10)
    assert set(due_at(case, now)) == {
        Due.FIRST_RESPONSE_OVERDUE,
        Due.ESCALATION,
        Due.DEADLOCK_LETTER,
        Due.UPDATE,
    }
    done = replace(
        case,
        first_response_overdue_sent_at=now,
        level=Level.MANAGER,
        deadlock_sent_at=now,
        last_customer_contact_at=now,
    )
    assert due_at(done, now) == ()
