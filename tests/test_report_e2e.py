"""`mailbot report`: a month of cases replayed with --now, every figure checked by construction."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_intake_e2e import complaint
from tests.test_procedure_e2e import ingest, tick
from tests.test_staff_e2e import staff_reply

# November 2026 in London is GMT: these UTC times are the office's wall-clock times
NOV = 11
CUSTOMERS = {
    "Z": "zed@example.net",  # received 30 October: outside the period
    "A": "alice@example.net",
    "B": "bob@example.net",
    "C": "carol@example.net",
    "D": "dan@example.net",
    "F": "fay@example.net",
    "E": "erin@example.net",
}


def moment(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def output(mailbot: Mailbot, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert mailbot(*args) == 0
    return capsys.readouterr().out


def report(mailbot: Mailbot, capsys: pytest.CaptureFixture[str], now: datetime, *args: str) -> Any:
    return json.loads(output(mailbot, capsys, "--now", now.isoformat(), "report", *args))


class Month:
    """The replay: cases opened, answered, escalated, resolved as the month goes."""

    def __init__(self, mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
        self.mailbot, self.tmp_path, self.capsys = mailbot, tmp_path, capsys
        self.refs: dict[str, str] = {}

    def opens(self, case: str, at: datetime) -> None:
        raw, _ = complaint(
            subject=f"Complaint {case}", sender=f"Customer {case} <{CUSTOMERS[case]}>"
        )
        ingest(self.mailbot, self.tmp_path, raw, at)
        cases = json.loads(output(self.mailbot, self.capsys, "cases", "--json"))
        self.refs[case] = cases[-1]["ref"]

    def staff(self, case: str, body: str, at: datetime) -> None:
        raw, _ = staff_reply(TEAM_LEADER, body, f"RE: [{self.refs[case]}] Complaint {case}")
        ingest(self.mailbot, self.tmp_path, raw, at)

    def customer(self, case: str, body: str, at: datetime) -> None:
        raw, _ = complaint(
            subject=f"Re: [{self.refs[case]}] Complaint {case}",
            sender=f"Customer {case} <{CUSTOMERS[case]}>",
            body=body,
        )
        ingest(self.mailbot, self.tmp_path, raw, at)


def replay_november(month: Month) -> None:
    """Ticks at 16:30 on every working day (after the 16:00 update cut-off), and:

    Z  30 Oct, never answered (outside the period).
    A  Mon 2 Nov 10:00, answered 14:00 (due Tue 10:00: on time), resolved Tue 10:00
       (7h30 + 1h = 8h30 of business time: 1 working day).
    B  Tue 3 Nov 10:00, never answered (late), escalated Thu 5, asks for a deadlock letter
       Mon 9 Nov 10:00: it goes at the tick after the decision window (Tue 10 Nov).
    C  Wed 11 Nov 16:00 (due Thu 16:00), answered Thu 17:00 (late), resolved Fri 16:00
       (1h30 + 8h30 + 7h: 2 working days).
    D  Mon 16 Nov 11:00, answered 15:00 (on time), asks for a deadlock letter, refused;
       out of scope; escalated automatically after 10 working days (Mon 30 Nov 11:00).
    F  Wed 18 Nov 10:00, marked vexatious (a command is no answer: late).
    E  Mon 30 Nov 15:00: first response due Tue 1 Dec 14:30, after the period (pending).
    """
    month.opens("Z", moment(10, 30, 10))
    events: list[tuple[datetime, Callable[[], None] | None]] = [
        (moment(NOV, 2, 10), lambda: month.opens("A", moment(NOV, 2, 10))),
        (moment(NOV, 2, 14), lambda: month.staff("A", "We are on it.", moment(NOV, 2, 14))),
        (moment(NOV, 3, 10), lambda: month.opens("B", moment(NOV, 3, 10))),
        (moment(NOV, 3, 10, 1), lambda: month.staff("A", "#resolve Fixed", moment(NOV, 3, 10))),
        (moment(NOV, 5, 11), lambda: month.staff("B", "#escalate Angry", moment(NOV, 5, 11))),
        (
            moment(NOV, 9, 10),
            lambda: month.customer("B", "Send me a deadlock letter now.", moment(NOV, 9, 10)),
        ),
        (moment(NOV, 11, 16), lambda: month.opens("C", moment(NOV, 11, 16))),
        (moment(NOV, 12, 17), lambda: month.staff("C", "Looking.", moment(NOV, 12, 17))),
        (moment(NOV, 13, 16), lambda: month.staff("C", "#resolve Credit", moment(NOV, 13, 16))),
        (moment(NOV, 16, 11), lambda: month.opens("D", moment(NOV, 16, 11))),
        (moment(NOV, 16, 15), lambda: month.staff("D", "Checking.", moment(NOV, 16, 15))),
        (
            moment(NOV, 17, 10),
            lambda: month.customer("D", "I want a deadlock letter.", moment(NOV, 17, 10)),
        ),
        (
            moment(NOV, 17, 11),
            lambda: month.staff("D", "#deadlock refuse Engineer booked", moment(NOV, 17, 11)),
        ),
        (
            moment(NOV, 17, 12),
            lambda: month.staff("D", "#out-of-scope A billing dispute", moment(NOV, 17, 12)),
        ),
        (moment(NOV, 18, 10), lambda: month.opens("F", moment(NOV, 18, 10))),
        (
            moment(NOV, 19, 10),
            lambda: month.staff("F", "#vexatious Fifty copies a day", moment(NOV, 19, 10)),
        ),
        (moment(NOV, 30, 15), lambda: month.opens("E", moment(NOV, 30, 15))),
    ]
    ticks = [
        moment(NOV, day, 16, 30)
        for day in range(2, 31)
        if moment(NOV, day, 12).weekday() < 5  # no bank holiday in November 2026
    ]
    plan = sorted(events + [(at, None) for at in ticks], key=lambda x: x[0])
    for at, act in plan:
        if act is None:
            tick(month.mailbot, at)
        else:
            act()


NOVEMBER = {
    "period": {"from": "2026-11-01", "to": "2026-11-30"},
    "complaints_received": 6,
    "cases_resolved": 2,
    "open_at_end": 4,
    "escalated": 2,
    "first_response": {"on_time": 2, "late": 3, "pending": 1},
    "adr_notices_sent": 0,
    "adr_notices_withheld": {
        "resolved": 0,
        "vexatious": 0,
        "out_of_scope": 0,
        "final_response": 0,
        "with_adr": 0,
        "not_a_complaint": 0,
        "merged": 0,
    },
    "deadlock_requests": 2,
    "deadlock_letters_sent": 1,
    "deadlock_refused": 1,
    "median_working_days_to_resolve": 1.5,
    "final_response_at_end": 1,
    "with_adr_at_end": 0,
    "adr_referrals": 0,
    "adr_outcomes": {"upheld": 0, "partly": 0, "not_upheld": 0},
    "remedies_late": 0,
    "subject_access_requests": {
        "received": 0,
        "answered_on_time": 0,
        "answered_late": 0,
        "extended": 0,
        "open": 0,
    },
    "adr_letters_undelivered": 0,
    "adr_letters_by_post": 0,
    "not_a_complaint": 0,
    "merged": 0,
    "adr_wait_weeks": 8,
    "ofcom_adr_wait_weeks": 6,
    "held_messages": {"total": 0, "released": 0, "by_reason": {}},  # none was spam
}
WEEKS = [  # (Monday, received, first response on time)
    ("2026-10-26", 0, 0),
    ("2026-11-02", 2, 1),
    ("2026-11-09", 1, 0),
    ("2026-11-16", 2, 1),
    ("2026-11-23", 0, 0),
    ("2026-11-30", 1, 0),
]


def updates_received(mailbot: Mailbot, customers: set[str], before: datetime) -> int:
    """The updates the customers' mail servers took before BEFORE: the report's other source."""
    count = 0
    for envelope in mailbot.customer_mail():
        sent = datetime.strptime(str(envelope.message["Date"]), "%a, %d %b %Y %H:%M:%S %z")
        if (
            envelope.message["X-Mailbot-Kind"] == "update"
            and set(envelope.rcpt_tos) & customers
            and sent < before
        ):
            count += 1
    return count


@pytest.mark.sqlite_only
def test_a_month_of_cases_replayed_gives_every_figure_of_the_report(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    month = Month(mailbot, tmp_path, capsys)
    replay_november(month)
    december_1st = moment(12, 1, 9)
    counted = set(CUSTOMERS.values()) - {CUSTOMERS["Z"]}

    figures = report(mailbot, capsys, december_1st, "--format", "json")  # last month: November
    by_week = figures.pop("by_week")
    updates = figures.pop("updates_sent")
    assert figures == NOVEMBER
    assert updates == updates_received(mailbot, counted, moment(12, 1, 0)) >= 20
    assert [(w["week_of"], w["received"], w["first_response"]["on_time"]) for w in by_week] == WEEKS
    assert sum(w["updates_sent"] for w in by_week) == updates  # the weeks add up to the month
    assert sum(w["cases_resolved"] for w in by_week) == NOVEMBER["cases_resolved"]
    named = report(
        mailbot,
        capsys,
        december_1st,
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--format",
        "json",
    )
    assert named["complaints_received"] == 6 and named["by_week"] == by_week

    rows = list(
        csv.DictReader(
            io.StringIO(
                output(
                    mailbot, capsys, "--now", december_1st.isoformat(), "report", "--format", "csv"
                )
            )
        )
    )
    refs = month.refs
    assert [r["reference"] for r in rows] == [refs[c] for c in "ABCDFE"]
    one = {r["reference"]: r for r in rows}
    assert one[refs["A"]]["first_response"] == "on_time"
    assert one[refs["A"]]["working_days_to_resolve"] == "1.0"
    assert one[refs["C"]]["working_days_to_resolve"] == "2.0"
    assert one[refs["C"]]["outcome"] == "resolved"
    assert one[refs["B"]]["outcome"] == "final_response"  # its deadlock letter went
    assert one[refs["B"]]["deadlock_sent_at"] == "2026-11-10T16:30:00+00:00"
    assert one[refs["E"]]["first_response"] == "pending"
    assert one[refs["D"]]["level"] == "manager"

    text = output(mailbot, capsys, "--now", december_1st.isoformat(), "report")
    assert "Complaints received 1 November 2026 to 30 November 2026" in text
    assert "ADR wait in force: 8 weeks (Ofcom's rule for communications providers: 6 weeks" in text
    # needing attention on 1 December: nobody ever answered F or Z (nor B, whose final
    # response, the deadlock letter, went: nothing more is due on it)
    attention = text.split("Cases that need attention now: ")[1].splitlines()
    assert attention[0] == "2"
    assert {line.split()[0] for line in attention[1:]} == {refs["F"], refs["Z"]}
    assert all("first response overdue" in line for line in attention[1:])

    page = tmp_path / "report.html"
    assert (
        mailbot(
            "--now", december_1st.isoformat(), "report", "--format", "html", "--output", str(page)
        )
        == 0
    )
    html = page.read_text()
    assert "<svg" in html and "Complaints received" in html and refs["F"] in html
    # nothing fetched: every reference is to the page itself (#...) or inline (data:)
    assert not re.search(
        r"""(src|href)\s*=\s*["'](?!#|data:)|<script|<link|@import|url\((?!#)""", html
    ), "no network: nothing fetched"

    # into the new year: the ADR notices fall due (8 weeks after receipt) and are decided
    for at in (moment(12, 29, 16, 30), *(moment(1, d, 16, 30, 2027) for d in (6, 11, 13, 25))):
        tick(mailbot, at)
    later = moment(1, 26, 12, 0, 2027)
    three = report(
        mailbot, capsys, later, "--from", "2026-11-01", "--to", "2027-01-31", "--format", "json"
    )
    assert three["adr_notices_sent"] == 1  # E, unresolved at 8 weeks
    assert three["adr_notices_withheld"] == {
        "resolved": 2,
        "vexatious": 1,
        "out_of_scope": 1,
        "final_response": 1,  # B: its deadlock letter gave the ADR scheme already
        "with_adr": 0,
        "not_a_complaint": 0,
        "merged": 0,
    }
    assert three["escalated"] == 4  # E and F automatically in December
    assert three["first_response"] == {"on_time": 2, "late": 4, "pending": 0}
    assert three["updates_sent"] == updates_received(mailbot, counted, later)

    # erased cases count the same: the figures come from what survives erasure
    assert mailbot("--now", "2028-02-01T12:00:00+00:00", "erase", "--customer", CUSTOMERS["A"]) == 0
    assert (
        report(
            mailbot, capsys, later, "--from", "2026-11-01", "--to", "2027-01-31", "--format", "json"
        )
        == three
    )
    assert (
        report(mailbot, capsys, december_1st, "--format", "json")["first_response"]
        == (NOVEMBER["first_response"])
    )


@pytest.mark.sqlite_only
def test_a_report_whose_end_is_before_its_start_is_refused(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert mailbot("report", "--from", "2026-11-30", "--to", "2026-11-01") == 2
    err = capsys.readouterr().err
    assert err.endswith("\nmailbot: --to 2026-11-01 is before --from 2026-11-30\n")


@pytest.mark.sqlite_only
def test_check_warns_when_the_adr_wait_is_longer_than_ofcom_s_rule(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    warning = (
        "WARNING procedure.adr_wait_weeks = 8: longer than Ofcom's rule for communications "
        "providers (6 weeks from 8 April 2026)"
    )
    assert warning in output(mailbot, capsys, "--now", "2026-12-01T10:00:00+00:00", "check")
    # before 8 April 2026 the rule was 8 weeks; with 6, nothing to say
    assert "adr_wait_weeks" not in output(
        mailbot, capsys, "--now", "2026-03-01T10:00:00+00:00", "check"
    )
    monkeypatch.setenv("MAILBOT_PROCEDURE_ADR_WAIT_WEEKS", "6")
    assert "adr_wait_weeks" not in output(
        mailbot, capsys, "--now", "2026-12-01T10:00:00+00:00", "check"
    )


def test_weeks_of_a_period_run_monday_to_monday() -> None:
    from datetime import date

    from mailbot.report import Period, last_month, last_week

    assert last_month(date(2026, 12, 1)) == Period(date(2026, 11, 1), date(2026, 11, 30))
    assert last_month(date(2026, 1, 15)) == Period(date(2025, 12, 1), date(2025, 12, 31))
    assert last_week(date(2026, 11, 30)) == Period(date(2026, 11, 23), date(2026, 11, 29))
    assert Period(date(2026, 11, 1), date(2026, 11, 2)).weeks() == [
        date(2026, 10, 26),
        date(2026, 11, 2),
    ]
