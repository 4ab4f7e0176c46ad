"""The procedure runs itself: weeks replayed with `mailbot tick --now`, through real SMTP."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailbot.procedure.calendar import BusinessCalendar
from tests.conftest import MANAGER, TEAM_LEADER, Mailbot
from tests.test_intake_e2e import complaint
from tests.test_staff_e2e import staff_reply

LONDON = ZoneInfo("Europe/London")
CALENDAR = BusinessCalendar()
CUSTOMER = "alice@example.net"


def at(moment: datetime) -> str:
    return moment.isoformat()


def ingest(mailbot: Mailbot, tmp_path: Path, raw: bytes, now: datetime) -> None:
    path = tmp_path / f"message-{now.timestamp():.0f}.eml"
    path.write_bytes(raw)
    assert mailbot("--now", at(now), "ingest", str(path)) == 0


def tick(mailbot: Mailbot, now: datetime) -> None:
    assert mailbot("--now", at(now), "tick") == 0


def the_case(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    found: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return found[0]


def customer_letters(mailbot: Mailbot) -> list[tuple[str, date]]:
    """(kind, London day sent) of every letter the customer received."""
    letters = []
    for envelope in mailbot.customer_mail():
        sent = datetime.strptime(str(envelope.message["Date"]), "%a, %d %b %Y %H:%M:%S %z")
        letters.append((str(envelope.message["X-Mailbot-Kind"]), sent.astimezone(LONDON).date()))
    return letters


def test_ten_weeks_replayed_every_half_hour_keep_the_code(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    received = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday; Christmas falls inside
    raw, _ = complaint()
    ingest(mailbot, tmp_path, raw, received)
    ref = the_case(mailbot, capsys)["ref"]
    resolve_at = received + timedelta(weeks=9, hours=1)  # after the 8-week ADR notice
    end = received + timedelta(weeks=10)
    now = received
    while now < end:
        now += timedelta(minutes=30)
        if now == resolve_at:
            reply, _ = staff_reply(
                TEAM_LEADER, "#resolve Line repaired and credit applied", f"RE: [{ref}] x"
            )
            ingest(mailbot, tmp_path, reply, now)
        tick(mailbot, now)

    letters = customer_letters(mailbot)
    kinds = Counter(kind for kind, _ in letters)
    assert kinds["acknowledgement"] == 1
    assert kinds["adr_notice"] == 1
    assert kinds["escalation_notice"] == 1  # R4: 10 working days unresolved
    assert kinds["resolution"] == 1
    assert set(kinds) == {
        "acknowledgement",
        "update",
        "adr_notice",
        "escalation_notice",
        "resolution",
    }

    updates = [day for kind, day in letters if kind == "update"]
    assert len(updates) == len(set(updates)), "one update a day at most"
    assert all(CALENDAR.is_working_day(day) for day in updates), "no updates on closed days"
    resolved_day = resolve_at.astimezone(LONDON).date()
    written_days = {day for _, day in letters}
    day = received.date() + timedelta(days=1)
    while day < resolved_day:
        if CALENDAR.is_working_day(day):
            assert day in written_days, f"the customer heard nothing on {day}"
        day += timedelta(days=1)
    assert max(day for _, day in letters) == resolved_day, "nothing after #resolve"
    assert date(2026, 12, 25) not in updates and date(2026, 12, 28) not in updates

    case = the_case(mailbot, capsys)
    assert case["adr_notice_sent_at"] == at(received + timedelta(days=56))
    assert case["status"] == "resolved" and case["level"] == "manager"
    assert case["next_due_at"] is None
    [escalation] = [e for e in case["events"] if e["action"] == "escalated"]
    assert escalation["actor"] == "mailbot" and "10 working days" in escalation["detail"]
    [overdue] = mailbot.staff_mail(TEAM_LEADER)[1:2]  # after the new-complaint notification
    assert "Nobody has replied to the customer" in overdue.text
    assert any("has been escalated" in e.text for e in mailbot.staff_mail(MANAGER))


def test_ticking_twice_at_the_same_moment_sends_nothing_new(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    received = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    raw, _ = complaint()
    ingest(mailbot, tmp_path, raw, received)
    tuesday_cutoff = datetime(2026, 11, 3, 16, 0, tzinfo=UTC)
    tick(mailbot, tuesday_cutoff)
    tick(mailbot, tuesday_cutoff)
    tick(mailbot, tuesday_cutoff + timedelta(minutes=5))
    assert [kind for kind, _ in customer_letters(mailbot)] == ["acknowledgement", "update"]


@pytest.mark.parametrize(
    ("command", "decision"),
    [
        ("#resolve Fixed on the first visit", "not sent: the case is resolved"),
        ("#vexatious Twenty identical messages a day", "not sent: the case is vexatious"),
        (
            "#out-of-scope Business customer, outside the scheme",
            "not sent: the case is out of scope",
        ),
    ],
)
def test_each_adr_exception_withholds_the_notice_and_is_recorded(
    mailbot: Mailbot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    decision: str,
) -> None:
    received = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    raw, _ = complaint()
    ingest(mailbot, tmp_path, raw, received)
    ref = the_case(mailbot, capsys)["ref"]
    reply, _ = staff_reply(TEAM_LEADER, f"{command}\n#note", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, reply, received + timedelta(days=3))
    tick(mailbot, received + timedelta(days=56) - timedelta(minutes=1))
    assert the_case(mailbot, capsys)["adr_notice_decision"] is None
    tick(mailbot, received + timedelta(days=56))
    case = the_case(mailbot, capsys)
    assert case["adr_notice_decision"] == decision
    assert case["adr_notice_sent_at"] is None
    assert "adr_notice" not in [kind for kind, _ in customer_letters(mailbot)]
    assert [e for e in case["events"] if e["action"] == "adr notice withheld"]


def deadlock_case(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str], asked: datetime
) -> str:
    received = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    raw, _ = complaint()
    ingest(mailbot, tmp_path, raw, received)
    ref = str(the_case(mailbot, capsys)["ref"])
    request, _ = complaint(
        subject=f"Re: [{ref}] still broken",
        body="This is hopeless. Please send me a deadlock letter so I can go to the ombudsman.\n",
    )
    ingest(mailbot, tmp_path, request, asked)
    return ref


FRIDAY_4PM = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
MONDAY_4PM = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def test_a_deadlock_request_is_told_to_staff_and_the_letter_goes_after_the_window(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deadlock_case(mailbot, tmp_path, capsys, FRIDAY_4PM)
    told = [e for e in mailbot.staff_mail(TEAM_LEADER) if "asks for a deadlock letter" in e.text]
    assert len(told) == 1 and "Monday 23 November 2026 at 16:00" in told[0].text
    assert the_case(mailbot, capsys)["deadlock_requested_at"] == at(FRIDAY_4PM)
    tick(mailbot, MONDAY_4PM - timedelta(minutes=1))
    assert "deadlock_letter" not in [k for k, _ in customer_letters(mailbot)]
    tick(mailbot, MONDAY_4PM)
    [letter] = [
        e for e in mailbot.customer_mail() if e.message["X-Mailbot-Kind"] == "deadlock_letter"
    ]
    assert "Ombudsman Services" in letter.text and "free" in letter.text
    assert "12 months" in letter.text and "2 November 2026" in letter.text
    assert the_case(mailbot, capsys)["deadlock_sent_at"] == at(MONDAY_4PM)


def test_a_refusal_within_the_window_sends_the_customer_the_reason_instead(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = deadlock_case(mailbot, tmp_path, capsys, FRIDAY_4PM)
    refusal, _ = staff_reply(
        TEAM_LEADER,
        "#deadlock refuse An engineer is booked for Tuesday to replace the line",
        f"RE: [{ref}] x",
    )
    ingest(mailbot, tmp_path, refusal, MONDAY_4PM - timedelta(hours=2))
    tick(mailbot, MONDAY_4PM + timedelta(days=1))
    kinds = [k for k, _ in customer_letters(mailbot)]
    assert "deadlock_letter" not in kinds
    [sent] = [
        e for e in mailbot.customer_mail() if e.message["X-Mailbot-Kind"] == "deadlock_refusal"
    ]
    assert "An engineer is booked for Tuesday" in sent.text


def test_staff_deadlock_sends_at_once_and_a_second_request_reaches_staff_for_a_copy(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = deadlock_case(mailbot, tmp_path, capsys, FRIDAY_4PM)
    issue, _ = staff_reply(
        MANAGER, "#deadlock We have offered a full refund of £120.", f"RE: [{ref}] x"
    )
    ingest(mailbot, tmp_path, issue, FRIDAY_4PM + timedelta(hours=1))
    again, _ = complaint(
        subject=f"Re: [{ref}] letter", body="I lost it. Please send me a deadlock letter again.\n"
    )
    ingest(mailbot, tmp_path, again, FRIDAY_4PM + timedelta(days=3))
    tick(mailbot, FRIDAY_4PM + timedelta(days=4))

    def deadlock_letters() -> list[Any]:
        kind = "deadlock_letter"
        return [e for e in mailbot.customer_mail() if e.message["X-Mailbot-Kind"] == kind]

    assert len(deadlock_letters()) == 1  # the final response went: nothing automatic after it
    told = [e for e in mailbot.staff_mail(TEAM_LEADER) if "asking for the deadlock" in e.text]
    assert told, "the handlers are told the customer asked again"
    copy, _ = staff_reply(MANAGER, "#deadlock", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, copy, FRIDAY_4PM + timedelta(days=4, hours=1))
    letters = deadlock_letters()
    assert len(letters) == 2
    assert "We have offered a full refund of £120." in letters[0].text
    assert "This is a copy of the deadlock letter we sent you" in letters[1].text
    case = the_case(mailbot, capsys)
    assert case["deadlock_sent_at"] == at(FRIDAY_4PM + timedelta(hours=1))


def test_a_reply_within_28_days_reopens_and_a_later_one_opens_a_new_case(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    received = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    raw, _ = complaint()
    ingest(mailbot, tmp_path, raw, received)
    ref = str(the_case(mailbot, capsys)["ref"])
    resolve, _ = staff_reply(TEAM_LEADER, "#resolve Fixed", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, resolve, received + timedelta(days=1))
    soon, _ = complaint(subject=f"Re: [{ref}] it broke again", body="Broken again today.\n")
    ingest(mailbot, tmp_path, soon, received + timedelta(days=20))
    case = the_case(mailbot, capsys)
    assert case["status"] == "open"
    assert "reopened" in [e["action"] for e in case["events"]]

    resolve2, _ = staff_reply(TEAM_LEADER, "#resolve Fixed again", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, resolve2, received + timedelta(days=21))
    late, _ = complaint(subject=f"Re: [{ref}] and again", body="Broken once more, sorry.\n")
    ingest(mailbot, tmp_path, late, received + timedelta(days=21 + 29))
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    old, new = json.loads(capsys.readouterr().out)
    assert old["status"] == "resolved"
    assert new["reopened_from"] == ref and new["status"] == "open"
    [ack] = [e for e in mailbot.customer_mail() if new["ref"] in e.message["Subject"]]
    assert ref in ack.text
