"""How a complaint ends (issue 25), end to end: final response, the ADR scheme, not a
complaint, merged cases, and every timer from `tick`; weeks replayed with `--now`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import Envelope
from tests.conftest import AGENT, MANAGER, STAFF, TEAM_LEADER, Mailbot
from tests.test_intake_e2e import complaint, show
from tests.test_procedure_e2e import (
    CALENDAR,
    LONDON,
    MONDAY_4PM,
    at,
    ingest,
    tick,
)
from tests.test_staff_e2e import staff_reply
from tests.test_weekly_digest_e2e import digests, with_digest

CUSTOMER = "alice@example.net"
RECEIVED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday; GMT until March
POSITION = "Our final position is a credit of £30; we cannot do more."


# -- helpers ---------------------------------------------------------------------------------


def sent_at(envelope: Envelope) -> datetime:
    """When mailbot wrote ENVELOPE (its Date: the --now of the run that sent it)."""
    return datetime.strptime(str(envelope.message["Date"]), "%a, %d %b %Y %H:%M:%S %z")


def kind(envelope: Envelope) -> str:
    return str(envelope.message["X-Mailbot-Kind"])


def day_of(envelope: Envelope) -> date:
    return sent_at(envelope).astimezone(LONDON).date()


def to_customer(mailbot: Mailbot, address: str = CUSTOMER) -> list[Envelope]:
    return [e for e in mailbot.smtp.received if address in e.rcpt_tos]


def after(envelopes: list[Envelope], moment: datetime) -> list[Envelope]:
    return [e for e in envelopes if sent_at(e) > moment]


def cases(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    found: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return found


def opened(
    mailbot: Mailbot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    when: datetime = RECEIVED,
    **letter: str,
) -> str:
    """A complaint ingested at WHEN; its case's reference."""
    raw, _ = complaint(**letter)
    ingest(mailbot, tmp_path, raw, when)
    return str(cases(mailbot, capsys)[-1]["ref"])


def staff(
    mailbot: Mailbot,
    tmp_path: Path,
    ref: str,
    body: str,
    when: datetime,
    sender: str = TEAM_LEADER,
) -> None:
    """A verified staff member's reply on case REF at WHEN."""
    reply, _ = staff_reply(sender, body, f"RE: [{ref}] My broadband keeps dropping")
    ingest(mailbot, tmp_path, reply, when)


def refusals(mailbot: Mailbot, sender: str = TEAM_LEADER) -> list[Envelope]:
    return [e for e in mailbot.staff_mail(sender) if "was not acted on" in e.text]


def moments(first: date, last: date) -> Iterator[datetime]:
    """09:30 and 16:30 (London) of every working day from FIRST to LAST, and noon of the
    days between (nothing may go then)."""
    day = first
    while day <= last:
        hours = (9, 16) if CALENDAR.is_working_day(day) else (12,)
        for hour in hours:
            yield datetime.combine(day, time(hour, 30), tzinfo=LONDON)
        day += timedelta(days=1)


def replay(mailbot: Mailbot, first: date, last: date) -> None:
    for moment in moments(first, last):
        tick(mailbot, moment)


def report(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str], start: str, end: str
) -> dict[str, Any]:
    capsys.readouterr()
    now = datetime(2027, 2, 15, 12, 0, tzinfo=UTC)
    args = ("--now", at(now), "report", "--format", "json", "--from", start, "--to", end)
    assert mailbot(*args) == 0
    figures: dict[str, Any] = json.loads(capsys.readouterr().out)
    return figures


# -- 1. final response ------------------------------------------------------------------------


def test_after_a_staff_deadlock_letter_the_customer_gets_nothing_automatic_for_eight_weeks(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    before = show(mailbot, ref, capsys)
    issued = RECEIVED + timedelta(hours=5)  # before R2's first response falls due
    staff(mailbot, tmp_path, ref, f"#deadlock {POSITION}", issued)
    assert [kind(e) for e in to_customer(mailbot)] == ["acknowledgement", "deadlock_letter"]
    assert POSITION in " ".join(to_customer(mailbot)[-1].text.split())
    assert show(mailbot, ref, capsys)["status"] == "final_response"

    replied = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
    words = "I do not accept your final position and I am going to the ombudsman."
    answered = False
    for moment in moments(date(2026, 11, 3), date(2027, 1, 8)):  # past the 8-week ADR date
        if moment > replied and not answered:
            answered = True
            answer, _ = complaint(subject=f"Re: [{ref}] Your final response", body=words + "\n")
            ingest(mailbot, tmp_path, answer, replied)
            assert to_customer(mailbot)[2:] == [], "nothing back to the customer's reply"
            [told] = after(mailbot.staff_mail(TEAM_LEADER), replied - timedelta(seconds=1))
            assert kind(told) == "staff_notification" and words in " ".join(told.text.split())
        tick(mailbot, moment)

    # a person's words still reach the customer: only an automatic letter stops
    relayed = datetime(2027, 1, 8, 17, 0, tzinfo=UTC)
    staff(mailbot, tmp_path, ref, "Dear Alice, our position has not changed.", relayed)
    assert [kind(e) for e in to_customer(mailbot)] == [
        "acknowledgement",
        "deadlock_letter",
        "staff_reply",
    ]
    staff_kinds = Counter(kind(e) for e in mailbot.smtp.received if set(e.rcpt_tos) <= STAFF)
    assert staff_kinds["first_response_overdue"] == 0
    assert staff_kinds["escalation_notice"] == 0
    assert mailbot.staff_mail(MANAGER) == []

    case = show(mailbot, ref, capsys)
    assert case["status"] == "final_response" and case["level"] == "team_leader"
    assert case["adr_notice_sent_at"] is None
    decision = case["adr_notice_decision"]
    assert decision.startswith("not sent: ") and "final response" in decision
    assert [e for e in case["events"] if e["action"] == "adr notice withheld"]
    assert case["deadlock_sent_at"] == at(issued)

    reason = "#reopen the customer sent new evidence"
    staff(mailbot, tmp_path, ref, reason, relayed + timedelta(days=1))
    case = show(mailbot, ref, capsys)
    assert case["status"] == "open"
    assert (case["received_at"], case["adr_date"]) == (before["received_at"], before["adr_date"])
    assert case["adr_notice_decision"] == decision, "the deadlock letter was the ADR letter"
    staff(mailbot, tmp_path, ref, "#resolve Credit of £30 applied", relayed + timedelta(days=2))
    case = show(mailbot, ref, capsys)
    assert (case["status"], case["resolution_summary"]) == ("resolved", "Credit of £30 applied")
    assert refusals(mailbot) == []


def test_after_an_automatic_deadlock_letter_the_customer_gets_nothing_for_eight_weeks(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    replay(mailbot, date(2026, 11, 3), date(2026, 11, 19))
    request, _ = complaint(
        subject=f"Re: [{ref}] still broken",
        body="This is hopeless. Please send me a deadlock letter so I can go to the ombudsman.\n",
    )
    tick(mailbot, datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    ingest(mailbot, tmp_path, request, datetime(2026, 11, 20, 16, 0, tzinfo=UTC))  # a Friday
    replay(mailbot, date(2026, 11, 21), date(2026, 11, 22))
    tick(mailbot, datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    tick(mailbot, MONDAY_4PM - timedelta(minutes=1))
    assert "deadlock_letter" not in [kind(e) for e in to_customer(mailbot)]
    tick(mailbot, MONDAY_4PM)  # the window ends: nobody refused
    kinds = [kind(e) for e in to_customer(mailbot)]
    assert kinds[-1] == "deadlock_letter" and kinds.count("deadlock_letter") == 1
    assert "update" in kinds, "the case was worked while open"
    letters = len(kinds)
    assert show(mailbot, ref, capsys)["status"] == "final_response"

    replay(mailbot, date(2026, 11, 24), date(2027, 1, 25))  # 9 weeks on
    assert [kind(e) for e in to_customer(mailbot)[letters:]] == []
    case = show(mailbot, ref, capsys)
    assert case["status"] == "final_response"
    assert case["deadlock_sent_at"] == at(MONDAY_4PM)
    assert case["adr_notice_sent_at"] is None
    assert case["adr_notice_decision"].startswith("not sent: ")
    # escalated while open (R4: 10 working days); after the letter nothing to anyone
    assert "escalation_notice" in [kind(e) for e in mailbot.staff_mail(MANAGER)]
    assert [kind(e) for e in after(mailbot.smtp.received, MONDAY_4PM)] == []


# -- 2. the ADR scheme ------------------------------------------------------------------------


def final_response(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[str, int]:
    """A case whose deadlock letter went; its reference and the customer's letters so far."""
    ref = opened(mailbot, tmp_path, capsys)
    staff(mailbot, tmp_path, ref, f"#deadlock {POSITION}", RECEIVED + timedelta(hours=5))
    assert show(mailbot, ref, capsys)["status"] == "final_response"
    return ref, len(to_customer(mailbot))


def test_the_adr_stage_reminds_the_staff_counts_the_remedy_in_days_and_writes_to_no_customer(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, letters = final_response(mailbot, tmp_path, capsys)
    referred = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
    staff(mailbot, tmp_path, ref, "#adr OS-123 2026-11-30", referred)  # a Monday
    case = show(mailbot, ref, capsys)
    assert case["status"] == "with_adr"
    assert case["adr_scheme"]["reference"] == "OS-123"
    assert case["adr_scheme"]["case_file_due"] == "2026-11-30"
    assert case["adr_scheme"]["referred_at"] == at(referred)
    assert case["adr_scheme"]["case_file_reminded_at"] is None

    def case_file_reminders() -> list[Envelope]:
        return [e for e in mailbot.smtp.received if kind(e) == "adr_case_file_due"]

    replay(mailbot, date(2026, 11, 19), date(2026, 11, 26))
    tick(mailbot, datetime(2026, 11, 27, 8, 59, tzinfo=UTC))
    assert case_file_reminders() == [], "not before the working day before the date"
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # its opening: the working day before
    tick(mailbot, friday)
    reminded = case_file_reminders()
    assert sorted(r for e in reminded for r in e.rcpt_tos) == sorted([MANAGER, TEAM_LEADER])
    assert all(ref in e.message["Subject"] and "OS-123" in e.text for e in reminded)
    assert show(mailbot, ref, capsys)["adr_scheme"]["case_file_reminded_at"] == at(friday)
    replay(mailbot, date(2026, 11, 27), date(2026, 11, 30))
    assert len(case_file_reminders()) == 2, "once each"
    assert mailbot.staff_mail(AGENT) == []

    decided = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    staff(mailbot, tmp_path, ref, "#adr-outcome upheld Refund £30", decided)
    scheme = show(mailbot, ref, capsys)["adr_scheme"]
    assert scheme["outcome"] == "upheld" and scheme["outcome_at"] == at(decided)
    assert scheme["remedy"] == "Refund £30"
    assert scheme["remedy_due"] == "2026-12-29"  # 1 December + 28 calendar days
    assert show(mailbot, ref, capsys)["status"] == "with_adr"

    def remedy_reminders() -> list[Envelope]:
        return [e for e in mailbot.smtp.received if kind(e) == "remedy_due"]

    replay(mailbot, date(2026, 12, 2), date(2027, 1, 5))
    reminders = remedy_reminders()
    assert all(e.rcpt_tos == [MANAGER] for e in reminders), "to the managers"
    # 7 days before (Tuesday 22nd); the working day before (Christmas Eve: the 25th, and the
    # 28th in lieu of Boxing Day, are bank holidays); the day after (late), each once
    assert [day_of(e) for e in reminders] == [
        date(2026, 12, 22),
        date(2026, 12, 24),
        date(2026, 12, 30),
    ]
    week, day, late = (" ".join(e.text.split()) for e in reminders)
    assert "Due in a week" in week and "Refund £30" in week
    assert "Due by the next working day" in day
    assert "LATE" in late and "Tuesday 29 December 2026" in late
    assert show(mailbot, ref, capsys)["adr_scheme"]["remedy_reminded"] == "late"

    done = datetime(2027, 1, 6, 14, 0, tzinfo=UTC)
    staff(mailbot, tmp_path, ref, "#remedy-done Refund of £30 paid to the account", done)
    case = show(mailbot, ref, capsys)
    assert case["status"] == "resolved" and case["resolved_at"] == at(done)
    assert "upheld" in case["resolution_summary"]
    assert "Refund of £30 paid to the account" in case["resolution_summary"]
    assert case["adr_scheme"]["remedy_done_at"] == at(done)
    replay(mailbot, date(2027, 1, 7), date(2027, 1, 12))
    assert len(remedy_reminders()) == 3
    assert to_customer(mailbot)[letters:] == [], "the scheme, not we, writes to the customer"
    assert refusals(mailbot) == []

    figures = report(mailbot, capsys, "2026-11-01", "2027-01-31")
    assert figures["complaints_received"] == 1 and figures["cases_resolved"] == 1
    assert figures["adr_referrals"] == 1
    assert figures["adr_outcomes"] == {"upheld": 1, "partly": 0, "not_upheld": 0}
    assert figures["remedies_late"] == 1
    # erased (UK GDPR), the case counts the same: the decision is the case's, not its words
    assert mailbot("--now", "2028-02-01T12:00:00+00:00", "erase", "--customer", CUSTOMER) == 0
    assert report(mailbot, capsys, "2026-11-01", "2027-01-31") == figures
    assert show(mailbot, ref, capsys)["adr_scheme"]["remedy"] is None


def test_a_not_upheld_decision_resolves_the_case_at_once_without_a_letter(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, letters = final_response(mailbot, tmp_path, capsys)
    staff(mailbot, tmp_path, ref, "#adr OS-9", datetime(2026, 11, 18, 11, 0, tzinfo=UTC))
    assert show(mailbot, ref, capsys)["adr_scheme"]["case_file_due"] is None
    decided = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    staff(mailbot, tmp_path, ref, "#ADR-Outcome not-upheld", decided)
    case = show(mailbot, ref, capsys)
    assert (case["status"], case["resolved_at"]) == ("resolved", at(decided))
    assert "not upheld" in case["resolution_summary"]
    assert case["adr_scheme"]["outcome"] == "not_upheld"
    assert case["adr_scheme"]["remedy_due"] is None
    replay(mailbot, date(2026, 12, 2), date(2026, 12, 4))
    assert to_customer(mailbot)[letters:] == []
    assert not [e for e in mailbot.smtp.received if kind(e) == "remedy_due"]
    assert refusals(mailbot) == []


def test_adr_on_an_open_case_before_its_adr_date_is_refused_and_changes_nothing(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    before = show(mailbot, ref, capsys)
    staff(mailbot, tmp_path, ref, "#adr OS-123 2026-12-10", RECEIVED + timedelta(days=10))
    [refused] = refusals(mailbot)
    assert ref in refused.text and "#adr" not in refused.message["Subject"]
    assert "has not come" in " ".join(refused.text.split())
    case = show(mailbot, ref, capsys)
    assert (case["status"], case["adr_scheme"]) == ("open", None)
    assert case["adr_date"] == before["adr_date"]
    assert [kind(e) for e in to_customer(mailbot)] == ["acknowledgement"]


# -- 3. not a complaint -----------------------------------------------------------------------


SELLER = "sam@seo-vendor.example"


def test_not_a_complaint_writes_to_nobody_for_eight_weeks_and_the_report_counts_it_apart(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(
        mailbot,
        tmp_path,
        capsys,
        subject="Grow your business with our SEO packages",
        sender=f"Sam Sales <{SELLER}>",
        body="Hello,\n\nWe can put your website on the first page of Google.\n\nSam\n",
    )
    marked = RECEIVED + timedelta(hours=1)
    staff(mailbot, tmp_path, ref, "#Not-a-complaint sales offer", marked)
    assert [kind(e) for e in to_customer(mailbot, SELLER)] == ["acknowledgement"]
    [done] = after(mailbot.staff_mail(TEAM_LEADER), marked - timedelta(seconds=1))
    assert kind(done) == "staff_confirmation"
    case = show(mailbot, ref, capsys)
    assert case["status"] == "not_a_complaint"
    assert [e for e in case["events"] if e["action"] == "not a complaint"]

    again = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
    follow_up, follow_up_id = complaint(
        subject=f"Re: [{ref}] Grow your business",
        sender=f"Sam Sales <{SELLER}>",
        body="Did you get my offer? Please call me back today.\n",
    )
    colleague, colleague_id = complaint(  # from another address: not even a third-party copy
        subject=f"Re: [{ref}] Grow your business",
        sender="Pat Sales <pat@seo-vendor.example>",
        body="Following up on Sam's offer: 20% off this week only.\n",
    )
    for moment in moments(date(2026, 11, 3), date(2027, 1, 4)):
        if moment == datetime(2026, 11, 10, 16, 30, tzinfo=LONDON):  # after 10:00
            ingest(mailbot, tmp_path, follow_up, again)
            ingest(mailbot, tmp_path, colleague, again + timedelta(hours=1))
        tick(mailbot, moment)

    assert [kind(e) for e in to_customer(mailbot, SELLER)] == ["acknowledgement"]
    assert after(mailbot.smtp.received, marked) == [], "no staff copy, no letter, no notice"
    case = show(mailbot, ref, capsys)
    assert case["status"] == "not_a_complaint"
    kept = [m["message_id"] for m in case["messages"]]
    assert follow_up_id in kept and colleague_id in kept, "kept on the case"
    assert case["adr_notice_sent_at"] is None
    assert case["adr_notice_decision"].startswith("not sent: ")

    figures = report(mailbot, capsys, "2026-11-01", "2026-11-30")
    assert figures["not_a_complaint"] == 1
    assert figures["complaints_received"] == 0
    assert figures["cases_resolved"] == 0 and figures["open_at_end"] == 0
    assert figures["merged"] == 0
    assert sum(figures["adr_notices_withheld"].values()) == 0
    assert sum(figures["first_response"].values()) == 0

    staff(
        mailbot,
        tmp_path,
        ref,
        "#reopen it was a complaint after all",
        datetime(2027, 1, 5, tzinfo=UTC),
    )
    assert show(mailbot, ref, capsys)["status"] == "open"
    assert refusals(mailbot) == []


# -- 4. merged cases --------------------------------------------------------------------------


SECOND = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a day after the first
MERGED_AT = datetime(2026, 11, 4, 11, 0, tzinfo=UTC)


def two_cases(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    earlier = opened(mailbot, tmp_path, capsys)
    tick(mailbot, datetime(2026, 11, 2, 16, 30, tzinfo=UTC))
    later = opened(
        mailbot,
        tmp_path,
        capsys,
        SECOND,
        subject="Still no broadband",
        body="My broadband is still dropping every night. Account 12345678.\n",
    )
    assert earlier != later
    tick(mailbot, datetime(2026, 11, 3, 16, 30, tzinfo=UTC))
    tick(mailbot, datetime(2026, 11, 4, 9, 30, tzinfo=UTC))
    return earlier, later


@pytest.mark.parametrize("on", ["later", "earlier"])
def test_merge_keeps_the_earlier_case_whichever_it_is_given_on(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str], on: str
) -> None:
    earlier, later = two_cases(mailbot, tmp_path, capsys)
    first = show(mailbot, earlier, capsys)
    acknowledged = [e for e in to_customer(mailbot) if kind(e) == "acknowledgement"]
    assert len(acknowledged) == 2
    later_ack = acknowledged[1]
    assert later in later_ack.message["Subject"]
    letters = len(to_customer(mailbot))

    given_on, naming = (later, earlier) if on == "later" else (earlier, later)
    staff(mailbot, tmp_path, given_on, f"#merge {naming.lower()}", MERGED_AT)
    survivor = show(mailbot, earlier, capsys)
    merged = show(mailbot, later, capsys)
    assert survivor["status"] == "open" and survivor["merged_into"] is None
    for field in ("ref", "received_at", "adr_date", "first_response_due", "level"):
        assert survivor[field] == first[field], field
    assert survivor["merged_cases"] == [later]
    assert {m["case"] for m in survivor["messages"]} == {earlier, later}
    assert (merged["status"], merged["merged_into"]) == ("merged", earlier)
    [notice] = [e for e in to_customer(mailbot) if kind(e) == "merge_notice"]
    assert earlier in notice.message["Subject"] and later in notice.text
    assert [kind(e) for e in to_customer(mailbot)[letters:]] == ["merge_notice"]

    # late replies to the merged case's thread land on the survivor
    by_header, by_header_id = complaint(
        subject="Re: your email",
        body="Engineer has not come yet.\n",
        extra_headers=f"In-Reply-To: {later_ack.message['Message-ID']}\r\n",
    )
    by_ref, by_ref_id = complaint(subject=f"Re: [{later}] still down", body="Still down.\n")
    ingest(mailbot, tmp_path, by_header, datetime(2026, 11, 4, 12, 0, tzinfo=UTC))
    ingest(mailbot, tmp_path, by_ref, datetime(2026, 11, 4, 12, 30, tzinfo=UTC))
    survivor = show(mailbot, earlier, capsys)
    on_case = {m["message_id"]: m["case"] for m in survivor["messages"]}
    assert on_case.get(by_header_id) == earlier and on_case.get(by_ref_id) == earlier
    told = [e for e in mailbot.staff_mail(TEAM_LEADER) if kind(e) == "staff_notification"]
    assert sum("Still down." in e.text for e in told) == 1
    assert all(later not in e.message["Subject"] for e in told[-2:])
    assert len(cases(mailbot, capsys)) == 2, "no new case for a late reply"

    replay(mailbot, date(2026, 11, 5), date(2026, 11, 27))
    since = after(to_customer(mailbot), MERGED_AT)
    updates = Counter(day_of(e) for e in since if kind(e) == "update")
    assert updates and max(updates.values()) == 1, "one update a day at most"
    assert all(CALENDAR.is_working_day(day) for day in updates)
    assert len(updates) >= 10, "the survivor is still worked"
    assert all(f"[{earlier}]" in e.message["Subject"] for e in since)
    assert show(mailbot, later, capsys)["status"] == "merged"

    figures = report(mailbot, capsys, "2026-11-01", "2026-11-30")
    assert figures["merged"] == 1 and figures["not_a_complaint"] == 0
    assert figures["complaints_received"] == 1
    assert sum(figures["first_response"].values()) == 1
    assert refusals(mailbot) == []


def test_merge_onto_itself_or_onto_a_merged_case_is_refused_and_changes_nothing(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier, later = two_cases(mailbot, tmp_path, capsys)
    staff(mailbot, tmp_path, earlier, f"#merge {earlier}", MERGED_AT)
    [itself] = refusals(mailbot)
    assert "itself" in itself.text
    assert show(mailbot, earlier, capsys)["merged_cases"] == []
    assert "merge_notice" not in [kind(e) for e in to_customer(mailbot)]

    staff(mailbot, tmp_path, later, f"#merge {earlier}", MERGED_AT + timedelta(hours=1))
    third = opened(
        mailbot,
        tmp_path,
        capsys,
        MERGED_AT + timedelta(hours=2),
        subject="Third time",
        body="And again: no broadband tonight either.\n",
    )
    letters = len(to_customer(mailbot))
    staff(mailbot, tmp_path, third, f"#merge {later}", MERGED_AT + timedelta(hours=3))
    assert len(refusals(mailbot)) == 2
    onto_merged = refusals(mailbot)[-1]
    assert later in onto_merged.text and earlier in onto_merged.text
    case = show(mailbot, third, capsys)
    assert (case["status"], case["merged_into"]) == ("open", None)
    assert show(mailbot, earlier, capsys)["merged_cases"] == [later]
    assert show(mailbot, later, capsys)["merged_into"] == earlier
    assert to_customer(mailbot)[letters:] == []
    assert [kind(e) for e in to_customer(mailbot)].count("merge_notice") == 1


# -- 5. every timer from tick -----------------------------------------------------------------


def test_tick_at_a_monday_opening_queues_the_weekly_digest_once(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    raw, _ = complaint()
    ingest(mailbot, tmp_path, raw, datetime(2026, 11, 24, 10, 0, tzinfo=UTC))  # a Tuesday
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    tick(mailbot, monday - timedelta(minutes=30))
    assert digests(mailbot) == [], "off unless [reports] weekly_digest = true"
    with_digest(mailbot)
    tick(mailbot, monday - timedelta(minutes=1))
    assert digests(mailbot) == [], "not before opening time"
    tick(mailbot, monday)
    assert len(digests(mailbot)) == 1, "tick queues it and sends it"
    tick(mailbot, monday + timedelta(hours=3))
    [digest] = digests(mailbot)
    assert digest.rcpt_tos == [MANAGER]
    assert digest.message["Subject"] == (
        "Complaints: the week of 23 November 2026 to 29 November 2026"
    )
    assert "Complaints received" in digest.text
