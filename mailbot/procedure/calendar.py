"""Business time: working days, opening hours and business-time deadlines (pure, no clock)."""

from __future__ import annotations

import calendar as months
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

# A calendar with no working day in ten years is a configuration mistake, not a loop to spin on.
_MAX_DAYS_SEARCHED = 3660


@dataclass(frozen=True)
class BusinessCalendar:
    """Business time is opening <= local wall-clock time < closing on working days.

    Boundary convention: business time on a day is the half-open interval
    [opening, closing). `add_business_time` that uses up a day exactly ends at
    that day's closing time (09:00 Mon + 8h30 = 17:30 Mon); any further time
    starts again at the next opening. A closing moment itself is outside
    business time, so `next_opening(17:30 Mon)` is 09:00 on the next working
    day. This makes add(a, x + y) == add(add(a, x), y) for every y > 0.

    Elapsed business time is real (UTC) time, while opening and closing are
    local wall-clock times, so deadlines stay right across daylight saving.
    """

    timezone: str = "Europe/London"
    opening: time = time(9, 0)
    closing: time = time(17, 30)
    region: str = "GB-ENG"
    extra_closed_days: frozenset[date] = field(default_factory=frozenset)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _holidays: holidays.HolidayBase = field(init=False, repr=False, compare=False)
    # Holiday dates per year, filled on first use; a cache, not part of the value.
    _holidays_by_year: dict[int, frozenset[date]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    # Each day's opening and closing instants as _moment finds them, filled on first use:
    # a deadline's search asks for the same few days again and again.
    _moments: dict[tuple[date, time], datetime] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _zone(self.timezone))
        object.__setattr__(self, "_holidays", _region_holidays(self.region))
        object.__setattr__(self, "extra_closed_days", frozenset(self.extra_closed_days))
        if self.opening.tzinfo is not None or self.closing.tzinfo is not None:
            raise ValueError("opening and closing must be wall-clock times without a time zone")
        if not self.opening < self.closing:
            raise ValueError(
                f"opening time {self.opening:%H:%M} must be before closing time "
                f"{self.closing:%H:%M}"
            )

    @property
    def zone(self) -> ZoneInfo:
        """The zone business hours are wall-clock times in."""
        return self._zone

    @property
    def working_day_length(self) -> timedelta:
        """One working day of business time (closing - opening, 8h30 by default)."""
        return datetime.combine(date.min, self.closing) - datetime.combine(date.min, self.opening)

    def is_holiday(self, day: date) -> bool:
        """True on a bank holiday of the region (substitute days included)."""
        year_days = self._holidays_by_year.get(day.year)
        if year_days is None:
            # Asking for any date of a year makes the holidays object expand to that year.
            _ = date(day.year, 1, 1) in self._holidays
            year_days = frozenset(d for d in self._holidays if d.year == day.year)
            self._holidays_by_year[day.year] = year_days
        return day in year_days

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday, not a bank holiday and not an extra closed day."""
        return day.weekday() < 5 and day not in self.extra_closed_days and not self.is_holiday(day)

    def is_business_time(self, at: datetime) -> bool:
        """True when `at` falls inside [opening, closing) on a working day."""
        local = self._local(at)
        day = local.date()
        # Compared against a UTC instant: aware datetimes sharing one tzinfo compare
        # by wall clock, which is wrong for the repeated hour when clocks go back.
        instant = local.astimezone(UTC)
        return self.is_working_day(day) and self._moment(
            day, self.opening
        ) <= instant < self._moment(day, self.closing)

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself when inside business time, else the next opening moment."""
        local = self._local(at)
        instant = local.astimezone(UTC)
        day = local.date()
        for _ in range(_MAX_DAYS_SEARCHED):
            if self.is_working_day(day):
                opens = self._moment(day, self.opening)
                if instant < opens:
                    return opens
                if instant < self._moment(day, self.closing):
                    return local
            day += timedelta(days=1)
        raise ValueError(f"no working day within {_MAX_DAYS_SEARCHED} days of {at.isoformat()}")

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """Add `duration` of business time; the clock starts at the next opening."""
        if duration < timedelta(0):
            raise ValueError(f"business time to add must not be negative, got {duration}")
        current = self.next_opening(start)
        remaining = duration
        while True:
            closes = self._moment(current.date(), self.closing)
            available = closes.astimezone(UTC) - current.astimezone(UTC)
            if remaining <= available:
                return (current.astimezone(UTC) + remaining).astimezone(self._zone)
            remaining -= available
            current = self.next_opening(closes)

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The business time from START to END (zero if END is not after START)."""
        total = timedelta(0)
        day, last = self._local(start).date(), self._local(end).date()
        while day <= last:
            if self.is_working_day(day):
                opens = max(self._moment(day, self.opening).astimezone(UTC), start.astimezone(UTC))
                closes = min(self._moment(day, self.closing).astimezone(UTC), end.astimezone(UTC))
                total += max(closes - opens, timedelta(0))
            day += timedelta(days=1)
        return total

    def working_days_between(self, start: datetime, end: datetime) -> float:
        """Business time from START to END in working days (8h30 of business time is one)."""
        return self.business_time_between(start, end) / self.working_day_length

    def when(self, moment: datetime) -> str:
        return when_words(moment, self._zone)

    def day(self, moment: datetime) -> str:
        return day_words(moment, self._zone)

    def working_days_after(self, day: date, n: int) -> date:
        """The n-th working day after `day` (n = 0 gives `day` itself)."""
        if n < 0:
            raise ValueError(f"number of working days must not be negative, got {n}")
        for _ in range(n):
            day = self._next_working_day(day)
        return day

    def working_day_before(self, day: date) -> date:
        """The last working day before `day`."""
        for _ in range(_MAX_DAYS_SEARCHED):
            day -= timedelta(days=1)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {_MAX_DAYS_SEARCHED} days of {day.isoformat()}")

    def opening_of(self, day: date) -> datetime:
        """The first opening on or after DAY (DAY's own, if it is a working day)."""
        return self.next_opening(self._moment(day, time(0)))

    def first_response_due(self, received: datetime) -> datetime:
        """R2: one working day of business time after receipt."""
        return self.add_business_time(received, self.working_day_length)

    def _next_working_day(self, day: date) -> date:
        for _ in range(_MAX_DAYS_SEARCHED):
            day += timedelta(days=1)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {_MAX_DAYS_SEARCHED} days of {day.isoformat()}")

    def _local(self, at: datetime) -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"datetime must be timezone-aware, got naive {at.isoformat()}")
        return at.astimezone(self._zone)

    def _moment(self, day: date, wall_clock: time) -> datetime:
        moment = self._moments.get((day, wall_clock))
        if moment is None:
            # The round trip through UTC turns a wall-clock time that a DST change
            # skips into the real instant after the gap.
            moment = (
                datetime.combine(day, wall_clock, tzinfo=self._zone)
                .astimezone(UTC)
                .astimezone(self._zone)
            )
            self._moments[day, wall_clock] = moment
        return moment


Day = TypeVar("Day", date, datetime)


def add_months(moment: Day, count: int) -> Day:
    """MOMENT COUNT calendar months later; a day the month lacks is its last day
    (31 January + 1 month: 28 February, or 29 in a leap year)."""
    month = moment.month - 1 + count
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(
        year=year, month=month, day=min(moment.day, months.monthrange(year, month)[1])
    )


def when_words(moment: datetime, zone: ZoneInfo) -> str:
    """A moment as a customer in the UK reads it: 'Monday 23 November 2026 at 16:00'."""
    local = moment.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M}"


def day_words(moment: datetime | date, zone: ZoneInfo) -> str:
    """A day as a customer reads it: 'Monday 23 November 2026'."""
    if not isinstance(moment, datetime):
        return _date_words(moment)
    return _date_words(moment.astimezone(zone).date())


@lru_cache(maxsize=1024)  # a letter names the few days its case's deadlines fall on
def _date_words(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as 'Europe/London')"
        ) from error


def _region_holidays(region: str) -> holidays.HolidayBase:
    country, _, subdivision = region.strip().upper().partition("-")
    try:
        return holidays.country_holidays(country, subdiv=subdivision or None)
    except NotImplementedError as error:
        raise ValueError(
            f"unknown holiday region {region!r} ({error}); expected a country code such as "
            f"'GB' or country-subdivision such as 'GB-ENG'"
        ) from error
