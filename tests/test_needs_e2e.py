"""Issue 27 end to end, on both databases: letters that follow a recorded need, the staff
copy that points a need out, the DPO's copies, the subject access clock replayed to the day,
the report's figures, and erasure."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sandbox import Envelope
from tests.conftest import DPO, MANAGER, TEAM_LEADER, Mailbot
from tests.test_endings_e2e import (
    day_of,
    kind,
    moments,
    opened,
    staff,
    to_customer,
)
from tests.test_intake_e2e import complaint, show
from tests.test_procedure_e2e import at, ingest, tick

RECEIVED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday
BLIND = (
    "My broadband on account 12345678 drops every evening.",
    "I am registered",  # a sentence over two lines, as mail clients wrap it
    "blind and I use a screen reader, so please keep emails simple.",
)
BREACH = (
    "You sent my bill, with my address and account number, to the wrong address.",
    "This is a data breach.",
)
REPLY = "Dear Alice, our engineer visits on Wednesday morning."


def html_of(envelope: Envelope) -> str | None:
    message = envelope.message
    assert isinstance(message, EmailMessage)
    part = message.get_body(("html",))
    return None if part is None else str(part.get_content())


class Styles(HTMLParser):
    """The text of every <style> element of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.css = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.css += data


def font_sizes_pt(html: str) -> dict[str, float]:
    """Each rule's font size in the HTML's styles, in points, as the last rule sets it."""
    page = Styles()
    page.feed(html)
    sizes: dict[str, float] = {}
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", page.css):
        found = re.search(r"font-size:\s*([\d.]+)(pt|px|em)", body)
        if found is None:
            continue
        value, unit = float(found.group(1)), found.group(2)
        pt = value if unit == "pt" else value * 0.75 if unit == "px" else value * -1
        for name in selector.split("*/")[-1].split(","):
            sizes[name.strip()] = pt
    return sizes


def subject_access_figures(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str], start: str, end: str, now: datetime
) -> dict[str, int]:
    """The report's subject access figures for the cases received from START to END."""
    capsys.readouterr()
    args = ("--now", at(now), "report", "--format", "json", "--from", start, "--to", end)
    assert mailbot(*args) == 0
    figures: dict[str, int] = json.loads(capsys.readouterr().out)["subject_access_requests"]
    return figures


def customer_replies(mailbot: Mailbot, tmp_path: Path, ref: str, text: str, when: datetime) -> None:
    reply, _ = complaint(subject=f"Re: [{ref}] My broadband keeps dropping", body=text)
    ingest(mailbot, tmp_path, reply, when)


def opened_with(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str], *lines: str
) -> str:
    """A complaint whose body is LINES (joined by new lines), ingested at RECEIVED."""
    return opened(mailbot, tmp_path, capsys, body="\n".join(["Hello,", "", *lines, "", "Alice"]))


def format_notes(mailbot: Mailbot) -> list[Envelope]:
    return [e for e in mailbot.staff_mail(TEAM_LEADER) if kind(e) == "format_copy_needed"]


# -- letters that follow the need -------------------------------------------------------------


def test_large_print_letters_have_no_font_under_16pt_and_the_text_as_today(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    before = to_customer(mailbot)[-1]
    ordinary = font_sizes_pt(html_of(before) or "")
    assert ordinary["div.letter"] == 12.0, "16px: as today"

    recorded = RECEIVED + timedelta(hours=2)
    staff(mailbot, tmp_path, ref, f"#needs large-print 20pt if you can\n{REPLY}", recorded)
    letter = to_customer(mailbot)[-1]
    assert kind(letter) == "staff_reply"
    html = html_of(letter)
    assert html is not None
    sizes = font_sizes_pt(html)
    assert sizes["div.letter"] >= 16 and sizes["p.from"] >= 16
    assert sizes["h1"] > sizes["div.letter"] and sizes["h2"] > sizes["div.letter"]
    assert min(sizes.values()) >= 16, sizes
    assert "line-height: 1.8" in html
    assert "our engineer visits on Wednesday morning" in letter.text

    case = show(mailbot, ref, capsys)
    assert case["needs"] == [
        {
            "need": "large-print",
            "note": "20pt if you can",
            "recorded_by": TEAM_LEADER,
            "recorded_at": at(recorded),
        }
    ]
    # every later letter follows it: the next day's update
    tick(mailbot, datetime(2026, 11, 3, 16, 30, tzinfo=UTC))
    update = to_customer(mailbot)[-1]
    assert kind(update) == "update"
    assert min(font_sizes_pt(html_of(update) or "").values()) >= 16
    assert format_notes(mailbot) == [], "large print is ours to lay out: no note"


def test_plain_text_letters_have_no_html_part(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    staff(mailbot, tmp_path, ref, f"#needs plain-text\n{REPLY}", RECEIVED + timedelta(hours=2))
    tick(mailbot, datetime(2026, 11, 3, 16, 30, tzinfo=UTC))
    acknowledgement, *after = to_customer(mailbot)
    assert html_of(acknowledgement) is not None, "before the need, as today"
    assert [kind(e) for e in after] == ["staff_reply", "update"]
    for envelope in after:
        assert envelope.message.get_content_type() == "text/plain"
        assert html_of(envelope) is None
    assert "our engineer visits on Wednesday morning" in after[0].text


def test_braille_letters_go_by_email_and_each_gets_one_note_with_the_letter_attached(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    staff(mailbot, tmp_path, ref, f"#needs braille Grade 2\n{REPLY}", RECEIVED + timedelta(hours=2))
    tick(mailbot, datetime(2026, 11, 3, 16, 30, tzinfo=UTC))  # an update
    staff(mailbot, tmp_path, ref, "#resolve Line repaired", datetime(2026, 11, 4, 11, tzinfo=UTC))
    letters = to_customer(mailbot)[1:]
    assert [kind(e) for e in letters] == ["staff_reply", "update", "resolution"]
    assert all(html_of(e) is not None for e in letters), "by email as to anyone"
    notes = format_notes(mailbot)
    assert len(notes) == len(letters) == 3
    for note, letter in zip(notes, letters, strict=True):
        message = note.message
        assert isinstance(message, EmailMessage)
        [attached] = list(message.iter_attachments())
        assert attached.get_filename() == f"{ref}-{kind(letter)}.txt"
        assert attached.get_content().strip() == letter.text.strip()
        assert "must be made in Braille" in " ".join(note.text.split())
        assert "What the customer needs: Grade 2" in note.text
    # the need is atop every staff letter about the case
    confirmation = [e for e in mailbot.staff_mail(TEAM_LEADER) if kind(e) == "staff_confirmation"]
    lines = confirmation[-1].text.splitlines()
    assert lines[0] == "----- Please reply above this line -----"
    assert lines[1] == "Support needs recorded on this case:"
    assert lines[2].startswith("  - braille: Grade 2 (recorded by tl@provider.example")


def test_needs_none_removes_them_and_letters_are_as_before(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    staff(mailbot, tmp_path, ref, "#needs audio\n#support carer present", RECEIVED)
    assert [n["need"] for n in show(mailbot, ref, capsys)["needs"]] == ["audio", "support"]
    staff(mailbot, tmp_path, ref, f"#needs none\n{REPLY}", RECEIVED + timedelta(hours=1))
    assert show(mailbot, ref, capsys)["needs"] == []
    assert format_notes(mailbot) == []
    assert html_of(to_customer(mailbot)[-1]) is not None


# -- the customer's own words pointed out -----------------------------------------------------


def test_the_staff_copy_opens_with_the_words_that_suggest_a_need_and_records_nothing(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened_with(mailbot, tmp_path, capsys, *BLIND)
    [copy] = mailbot.staff_mail(TEAM_LEADER)
    lines = copy.text.splitlines()
    assert lines[:3] == [
        "----- Please reply above this line -----",
        "This customer may need support:",
        '  "I am registered blind and I use a screen reader, so please keep emails simple."',
    ]
    assert show(mailbot, ref, capsys)["needs"] == [], "nothing recorded from their words alone"

    plain = "Hello again, I need my broadband fixed before Friday.\n"
    customer_replies(mailbot, tmp_path, ref, plain, RECEIVED + timedelta(hours=3))
    told = mailbot.staff_mail(TEAM_LEADER)[-1]
    assert "may need support" not in told.text


# -- the data protection officer ---------------------------------------------------------------


def test_a_complaint_about_personal_data_goes_to_the_dpo_who_acts_on_it(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened_with(mailbot, tmp_path, capsys, *BREACH)
    case = show(mailbot, ref, capsys)
    assert case["flags"] == ["data_protection"]
    [acknowledgement] = to_customer(mailbot)
    assert "our data protection officer has it too" in " ".join(acknowledgement.text.split())
    [copy] = mailbot.staff_mail(DPO)
    assert kind(copy) == "staff_notification" and "wrong address" in copy.text
    assert len(mailbot.staff_mail(TEAM_LEADER)) == 1, "the team leaders have it as always"

    later = RECEIVED + timedelta(hours=4)
    words = "Dear Alice, I am sorry: we have reported this and changed our process."
    staff(mailbot, tmp_path, ref, f"#escalate data breach\n{words}", later, sender=DPO)
    assert [kind(e) for e in to_customer(mailbot)] == [
        "acknowledgement",
        "escalation_notice",
        "staff_reply",
    ]
    assert show(mailbot, ref, capsys)["level"] == "manager"
    # escalated, the managers handle it, and the DPO still has every copy
    customer_replies(mailbot, tmp_path, ref, "Thanks.\n", later + timedelta(hours=1))
    assert kind(mailbot.staff_mail(MANAGER)[-1]) == "staff_notification"
    assert kind(mailbot.staff_mail(DPO)[-1]) == "staff_notification"


def test_a_complaint_about_service_is_not_the_dpos(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    assert show(mailbot, ref, capsys)["flags"] == []
    assert mailbot.staff_mail(DPO) == []
    assert "data protection officer" not in to_customer(mailbot)[0].text


# -- subject access requests -------------------------------------------------------------------

SAR_RECEIVED = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)  # a Sunday: due Sunday 28 February


def dpo_told(mailbot: Mailbot) -> list[tuple[str, date]]:
    """(what the DPO was told, the London day) of each access-request letter."""
    told = []
    for envelope in mailbot.staff_mail(DPO):
        if kind(envelope) != "subject_access_due":
            continue
        first = envelope.text.splitlines()[1]
        stage = (
            "new"
            if first.startswith("New subject access request")
            else "late"
            if first.startswith("LATE")
            else "day"
            if first.startswith("Due by the next working day")
            else "week"
        )
        told.append((stage, day_of(envelope)))
    return told


def test_a_subject_access_request_runs_to_the_day_across_the_month_end(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        "Hello,\n\nMy broadband has been off for a week. Please also send me a copy of all the "
        "personal data you hold about me.\n\nAlice\n"
    )
    ref = opened(mailbot, tmp_path, capsys, when=SAR_RECEIVED, body=body)
    case = show(mailbot, ref, capsys)
    assert case["subject_access_request"]["due"] == "2027-02-28"
    assert case["flags"] == ["data_protection"]
    [new] = mailbot.staff_mail(DPO)[:1]
    assert "must be answered by Sunday 28 February 2027" in " ".join(new.text.split())
    acknowledgement = to_customer(mailbot)[0]
    assert "by Sunday 28 February 2027" in " ".join(acknowledgement.text.split())

    for moment in moments(date(2027, 2, 1), date(2027, 3, 3)):
        tick(mailbot, moment)
    # the week before (Sunday 21st: the opening after it), the working day before, late
    assert dpo_told(mailbot) == [
        ("new", date(2027, 1, 31)),
        ("week", date(2027, 2, 22)),
        ("day", date(2027, 2, 26)),
        ("late", date(2027, 3, 1)),
    ]
    staff(mailbot, tmp_path, ref, "#sar-done sent by post", datetime(2027, 3, 3, 17, tzinfo=UTC))
    for moment in moments(date(2027, 3, 4), date(2027, 3, 12)):
        tick(mailbot, moment)
    assert len(dpo_told(mailbot)) == 4, "an answered request reminds nobody"
    assert show(mailbot, ref, capsys)["subject_access_request"]["answered_at"] == at(
        datetime(2027, 3, 3, 17, tzinfo=UTC)
    )

    open_then = subject_access_figures(
        mailbot, capsys, "2027-01-25", "2027-01-31", datetime(2027, 2, 15, tzinfo=UTC)
    )
    assert (open_then["received"], open_then["open"]) == (1, 1)
    figures = subject_access_figures(  # as recorded by the period's end
        mailbot, capsys, "2027-01-25", "2027-03-07", datetime(2027, 3, 15, tzinfo=UTC)
    )
    assert figures == dict(received=1, answered_on_time=0, answered_late=1, extended=0, open=0)


def test_an_extended_request_tells_the_customer_and_is_answered_on_time(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys, when=SAR_RECEIVED)
    request = "I am making a subject access request for every call recording.\n"
    asked = datetime(2028, 1, 31, 11, 0, tzinfo=UTC)  # a year on, in a leap year
    customer_replies(mailbot, tmp_path, ref, request, asked)
    assert show(mailbot, ref, capsys)["subject_access_request"]["due"] == "2028-02-29"

    reason = "six years of call recordings in three systems"
    staff(mailbot, tmp_path, ref, f"#sar-extend {reason}", asked + timedelta(days=3), sender=DPO)
    letter = to_customer(mailbot)[-1]
    assert kind(letter) == "subject_access_extended"
    text = " ".join(letter.text.split())
    assert "by Sunday 30 April 2028 at the latest" in text and reason in text
    again = "#sar-extend still more"
    staff(mailbot, tmp_path, ref, again, asked + timedelta(days=4), sender=DPO)
    assert [kind(e) for e in to_customer(mailbot)].count("subject_access_extended") == 1
    refused = mailbot.staff_mail(DPO)[-1]
    assert "already extended (once only)" in " ".join(refused.text.split())

    done = datetime(2028, 4, 20, 10, 0, tzinfo=UTC)
    staff(mailbot, tmp_path, ref, "#sar-done emailed the export", done, sender=DPO)
    figures = subject_access_figures(
        mailbot, capsys, "2027-01-25", "2028-04-30", datetime(2028, 5, 1, tzinfo=UTC)
    )
    assert figures == dict(received=1, answered_on_time=1, answered_late=0, extended=1, open=0)
    stages = Counter(stage for stage, _ in dpo_told(mailbot))
    assert stages == {"new": 1}, "no reminder fell due before it was answered"
    # erased (UK GDPR), the request counts the same: the rule's records keep how it stood
    staff(
        mailbot, tmp_path, ref, "#resolve Answered the request", datetime(2028, 4, 21, tzinfo=UTC)
    )
    assert (
        mailbot("--now", "2029-06-01T12:00:00+00:00", "erase", "--customer", "alice@example.net")
        == 0
    )
    assert figures == subject_access_figures(
        mailbot, capsys, "2027-01-25", "2028-04-30", datetime(2028, 5, 1, tzinfo=UTC)
    )


# -- erasure -----------------------------------------------------------------------------------


def test_erasure_removes_the_needs_and_their_notes(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = opened(mailbot, tmp_path, capsys)
    note = "#support undergoing chemotherapy, calls after 2pm only"
    staff(mailbot, tmp_path, ref, f"#needs large-print\n{note}", RECEIVED + timedelta(hours=1))
    staff(mailbot, tmp_path, ref, "#resolve Fixed", RECEIVED + timedelta(hours=2))
    assert len(show(mailbot, ref, capsys)["needs"]) == 2
    later = at(datetime(2028, 1, 10, 10, 0, tzinfo=UTC))
    assert mailbot("--now", later, "erase", "--customer", "alice@example.net") == 0
    case = show(mailbot, ref, capsys)
    assert case["needs"] == []
    held = [e for e in case["events"] if "chemotherapy" in e["detail"]]
    assert held == [], "the note is gone from the case's history too"
