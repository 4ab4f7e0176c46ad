"""Tests for business time: R2's first-response deadline, bank holidays and daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.procedure.calendar import BusinessCalendar

LONDON = ZoneInfo("Europe/London")
CALENDAR = BusinessCalendar()


def london(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


# R2: the seed's own examples


def test_received_friday_4pm_is_due_monday_4pm() -> None:
    assert date(2026, 11, 20).strftime("%A") == "Friday"
    assert CALENDAR.first_response_due(london(2026, 11, 20, 16)) == london(2026, 11, 23, 16)


def test_received_friday_8pm_is_due_monday_5_30pm() -> None:
    assert CALENDAR.first_response_due(london(2026, 11, 20, 20)) == london(2026, 11, 23, 17, 30)


def test_received_saturday_is_due_monday_at_closing() -> None:
    assert CALENDAR.first_response_due(london(2026, 11, 21, 11)) == london(2026, 11, 23, 17, 30)


def test_received_before_opening_is_due_at_closing_the_same_day() -> None:
    assert CALENDAR.first_response_due(london(2026, 11, 24, 7)) == london(2026, 11, 24, 17, 30)


def test_received_at_opening_is_due_at_closing_not_next_morning() -> None:
    assert CALENDAR.first_response_due(london(2026, 11, 23, 9)) == london(2026, 11, 23, 17, 30)


def test_received_at_closing_is_due_at_closing_next_working_day() -> None:
    assert CALENDAR.first_response_due(london(2026, 11, 23, 17, 30)) == london(2026, 11, 24, 17, 30)


def test_received_in_another_zone_is_due_in_london_time() -> None:
    received = datetime(2026, 11, 20, 16, tzinfo=UTC)
    due = CALENDAR.first_response_due(received)
    assert due == london(2026, 11, 23, 16)
    assert due.tzinfo == LONDON


# Bank holidays of England and Wales


def test_christmas_2026_and_boxing_day_observed_are_bank_holidays() -> None:
    assert not CALENDAR.is_working_day(date(2026, 12, 25))  # Friday
    assert date(2026, 12, 26).weekday() == 5  # Boxing Day is a Saturday...
    assert not CALENDAR.is_working_day(date(2026, 12, 28))  # ...so Monday is the substitute day
    assert CALENDAR.is_working_day(date(2026, 12, 29))


def test_received_christmas_eve_4pm_is_due_tuesday_29_december_4pm() -> None:
    assert CALENDAR.first_response_due(london(2026, 12, 24, 16)) == london(2026, 12, 29, 16)


def test_easter_2026_good_friday_and_easter_monday_are_skipped() -> None:
    assert not CALENDAR.is_working_day(date(2026, 4, 3))
    assert not CALENDAR.is_working_day(date(2026, 4, 6))
    # Thursday 2 April 16:00 -> Tuesday 7 April 16:00 (BST throughout).
    assert CALENDAR.first_response_due(london(2026, 4, 2, 16)) == london(2026, 4, 7, 16)


def test_christmas_2027_falls_on_a_weekend_so_both_substitute_days_are_holidays() -> None:
    assert not CALENDAR.is_working_day(date(2027, 12, 27))
    assert not CALENDAR.is_working_day(date(2027, 12, 28))
    assert CALENDAR.working_days_after(date(2027, 12, 24), 1) == date(2027, 12, 29)


def test_scotland_keeps_2_january_but_england_does_not() -> None:
    scotland = BusinessCalendar(region="GB-SCT")
    assert not scotland.is_working_day(date(2026, 1, 2))
    assert CALENDAR.is_working_day(date(2026, 1, 2))


def test_extra_closed_days_are_not_working_days() -> None:
    calendar = BusinessCalendar(extra_closed_days=frozenset({date(2026, 11, 23)}))
    assert not calendar.is_working_day(date(2026, 11, 23))
    assert calendar.first_response_due(london(2026, 11, 20, 16)) == london(2026, 11, 24, 16)


# Daylight saving: business hours are London wall-clock times


def test_received_friday_before_clocks_go_forward_is_due_monday_4pm_bst() -> None:
    received = london(2026, 3, 27, 16)
    assert received.utcoffset() == timedelta(0)
    due = CALENDAR.first_response_due(received)
    assert due == london(2026, 3, 30, 16)
    assert due.utcoffset() == timedelta(hours=1)
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 15, tzinfo=UTC)


def test_received_friday_before_clocks_go_back_is_due_monday_4pm_gmt() -> None:
    received = london(2026, 10, 23, 16)
    assert received.utcoffset() == timedelta(hours=1)
    due = CALENDAR.first_response_due(received)
    assert due == london(2026, 10, 26, 16)
    assert due.utcoffset() == timedelta(0)


# Working days and opening moments


def test_saturday_is_not_a_working_day() -> None:
    assert not CALENDAR.is_working_day(date(2026, 11, 21))


def test_bank_holiday_is_not_a_working_day() -> None:
    assert not CALENDAR.is_working_day(date(2026, 8, 31))  # Late Summer Bank Holiday


def test_normal_tuesday_is_a_working_day() -> None:
    assert CALENDAR.is_working_day(date(2026, 11, 24))


def test_next_opening_inside_business_hours_is_the_same_instant() -> None:
    at = london(2026, 11, 24, 11, 17)
    assert CALENDAR.next_opening(at) == at


def test_next_opening_after_closing_is_next_working_morning() -> None:
    assert CALENDAR.next_opening(london(2026, 11, 24, 17, 30)) == london(2026, 11, 25, 9)
    assert CALENDAR.next_opening(london(2026, 12, 24, 18)) == london(2026, 12, 29, 9)


def test_working_days_after() -> None:
    assert CALENDAR.working_days_after(date(2026, 11, 20), 1) == date(2026, 11, 23)
    assert CALENDAR.working_days_after(date(2026, 11, 20), 5) == date(2026, 11, 27)
    assert CALENDAR.working_days_after(date(2026, 12, 24), 1) == date(2026, 12, 29)
    assert CALENDAR.working_days_after(date(2026, 4, 1), 2) == date(2026, 4, 7)
    assert CALENDAR.working_days_after(date(2026, 11, 21), 0) == date(2026, 11, 21)


def test_custom_hours() -> None:
    calendar = BusinessCalendar(opening=time(8, 0), closing=time(18, 0))
    assert calendar.working_day_length == timedelta(hours=10)
    assert calendar.first_response_due(london(2026, 11, 20, 16)) == london(2026, 11, 23, 16)


# Bad input and bad settings


def test_naive_datetime_raises() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.first_response_due(datetime(2026, 11, 20, 16))
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.next_opening(datetime(2026, 11, 20, 16))


def test_negative_duration_raises() -> None:
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.add_business_time(london(2026, 11, 20, 16), timedelta(hours=-1))


@pytest.mark.parametrize("region", ["XX", "GB-XYZ", ""])
def test_unknown_region_raises_value_error(region: str) -> None:
    with pytest.raises(ValueError, match="unknown holiday region"):
        BusinessCalendar(region=region)


@pytest.mark.parametrize("zone", ["Europe/Londres", "", "../etc/passwd"])
def test_unknown_timezone_raises_value_error(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        BusinessCalendar(timezone=zone)


def test_opening_after_closing_raises_value_error() -> None:
    with pytest.raises(ValueError, match="before closing"):
        BusinessCalendar(opening=time(18, 0), closing=time(9, 0))


def test_country_without_subdivision_is_accepted() -> None:
    france = BusinessCalendar(timezone="Europe/Paris", region="FR")
    assert not france.is_working_day(date(2026, 7, 14))


# Properties of add_business_time

starts = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2027, 12, 31, 23, 59),
    timezones=st.just(UTC),
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200))
positive_durations = st.timedeltas(
    min_value=timedelta(microseconds=1), max_value=timedelta(hours=200)
)


def at_closing(calendar: BusinessCalendar, at: datetime) -> bool:
    local = at.astimezone(LONDON)
    return calendar.is_working_day(local.date()) and local.timetz().replace(tzinfo=None) == (
        calendar.closing
    )


@settings(max_examples=300, deadline=None)
@given(start=starts, duration=durations)
def test_result_is_never_before_start_and_lies_in_business_time(
    start: datetime, duration: timedelta
) -> None:
    end = CALENDAR.add_business_time(start, duration)
    assert end >= start
    assert end.tzinfo == LONDON
    assert CALENDAR.is_business_time(end) or at_closing(CALENDAR, end)


@settings(max_examples=300, deadline=None)
@given(start=starts, first=durations, second=positive_durations)
def test_adding_in_two_steps_equals_adding_at_once(
    start: datetime, first: timedelta, second: timedelta
) -> None:
    # Holds for second > 0 only: adding zero to a closing moment moves it to the next opening.
    in_two_steps = CALENDAR.add_business_time(CALENDAR.add_business_time(start, first), second)
    assert CALENDAR.add_business_time(start, first + second) == in_two_steps


@settings(max_examples=200, deadline=None)
@given(start=starts)
def test_first_response_due_is_one_working_day_of_business_time(start: datetime) -> None:
    due = CALENDAR.first_response_due(start)
    opens = CALENDAR.next_opening(start)
    # Whole-day check: the due moment has the same wall-clock time as the start of the
    # clock, on the next working day (or the closing time of the same day).
    if opens.timetz().replace(tzinfo=None) == CALENDAR.opening:
        assert due.date() == opens.date()
        assert due.timetz().replace(tzinfo=None) == CALENDAR.closing
    else:
        assert due.date() == CALENDAR.working_days_after(opens.date(), 1)
        assert due.timetz().replace(tzinfo=None) == opens.timetz().replace(tzinfo=None)
