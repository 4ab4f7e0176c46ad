"""The report's pure parts: business time between two moments, the hold's months, Ofcom's rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mailbot.procedure.calendar import BusinessCalendar, add_months
from mailbot.procedure.rules import ofcom_adr_wait_weeks, ofcom_words
from mailbot.report import withheld_reason

CALENDAR = BusinessCalendar()


def test_received_friday_4pm_resolved_monday_4pm_took_one_working_day() -> None:
    friday = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    monday = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert CALENDAR.business_time_between(friday, monday) == timedelta(hours=8, minutes=30)
    assert CALENDAR.working_days_between(friday, monday) == 1.0


def test_christmas_and_boxing_day_observed_are_no_working_time() -> None:
    # Thursday 24 December 2026 17:30 to Tuesday 29 December 09:00: 25th, 28th are holidays
    before = datetime(2026, 12, 24, 17, 30, tzinfo=UTC)
    after = datetime(2026, 12, 29, 9, 0, tzinfo=UTC)
    assert CALENDAR.business_time_between(before, after) == timedelta(0)


def test_business_time_counts_the_real_hours_across_the_clocks_going_forward() -> None:
    # Friday 27 March 2026 09:00 GMT to Monday 30 March 09:00 BST: one working day
    friday = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
    monday = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert CALENDAR.working_days_between(friday, monday) == 1.0
    assert CALENDAR.business_time_between(monday, friday) == timedelta(0)


def test_the_hold_ends_twelve_calendar_months_later_at_the_end_of_a_short_month() -> None:
    resolved = datetime(2027, 2, 28, 10, 0, tzinfo=UTC)
    assert add_months(resolved, 12) == datetime(2028, 2, 28, 10, 0, tzinfo=UTC)
    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 4, tzinfo=UTC), 14) == datetime(2028, 1, 4, tzinfo=UTC)


def test_ofcom_s_rule_is_six_weeks_from_8_april_2026() -> None:
    assert ofcom_adr_wait_weeks(date(2026, 4, 7)) == 8
    assert ofcom_adr_wait_weeks(date(2026, 4, 8)) == 6
    assert ofcom_words(6) == "6 weeks from 8 April 2026"
    assert ofcom_words(8) == "8 weeks"


def test_an_adr_notice_withheld_names_its_exception() -> None:
    assert withheld_reason("not sent: the case is resolved") == "resolved"
    assert withheld_reason("not sent: the case is out of scope") == "out_of_scope"
    assert withheld_reason("not sent: the case is vexatious") == "vexatious"
