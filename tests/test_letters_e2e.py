"""A case's mail as its people see it: one subject, one thread in time order, signed once."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import Envelope
from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_intake_e2e import complaint
from tests.test_staff_e2e import MONDAY_10AM, staff_reply

SUBJECT = "My broadband keeps dropping"
MONDAY_11AM = MONDAY_10AM + timedelta(hours=1)
TUESDAY_4PM = "2026-11-24T16:00:00+00:00"
TUESDAY_11AM = "2026-11-24T11:00:00+00:00"


def case_of(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    [case] = json.loads(capsys.readouterr().out)
    assert isinstance(case, dict)
    return case


def opened(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """A complaint processed: its case's reference and the complaint's Message-ID."""
    raw, message_id = complaint(subject=SUBJECT)
    mailbot.append(raw, MONDAY_10AM)
    assert mailbot("--now", MONDAY_10AM.isoformat(), "run", "--once") == 0
    return str(case_of(mailbot, capsys)["ref"]), message_id


def reply_from_terry(mailbot: Mailbot, ref: str, body: str) -> str:
    [notification] = mailbot.staff_mail(TEAM_LEADER)[:1]
    raw, message_id = staff_reply(
        TEAM_LEADER,
        body,
        subject=f"RE: [{ref}] {SUBJECT}",
        in_reply_to=str(notification.message["Message-ID"]),
    )
    mailbot.append(raw, MONDAY_11AM)
    assert mailbot("--now", MONDAY_11AM.isoformat(), "run", "--once") == 0
    return message_id


def references(mail: Envelope) -> list[str]:
    return str(mail.message["References"]).split()


def test_every_mail_about_a_case_keeps_one_subject_and_one_thread_in_time_order(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, complaint_id = opened(mailbot, capsys)
    staff_id = reply_from_terry(mailbot, ref, "Hello Alice,\n\nAn engineer visits on Wednesday.")
    assert mailbot("--now", TUESDAY_4PM, "tick") == 0

    ack, relayed, update = mailbot.customer_mail()
    assert [str(m.message["X-Mailbot-Kind"]) for m in (ack, relayed, update)] == [
        "acknowledgement",
        "staff_reply",
        "update",
    ]
    ours = [str(m.message["Message-ID"]) for m in (ack, relayed)]
    assert references(update) == [complaint_id, *ours]  # in the order they went
    assert update.message["In-Reply-To"] == complaint_id  # the customer's latest message
    everything = mailbot.smtp.received
    assert {str(m.message["Subject"]) for m in everything} == {f"[{ref}] {SUBJECT}"}
    assert not [m for m in everything if "Precedence" in m.message]
    assert all(m.message["In-Reply-To"] and references(m)[0] == complaint_id for m in everything)
    [confirmation] = [m for m in mailbot.staff_mail(TEAM_LEADER) if "done." in m.text]
    assert (
        confirmation.message["In-Reply-To"] == staff_id and references(confirmation)[-1] == staff_id
    )
    assert all(m.message["Auto-Submitted"] for m in (ack, update))
    assert all(m.message["X-Auto-Response-Suppress"] == "All" for m in everything)
    assert all(
        str(m.message["From"]) == "Provider Complaints <complaints@provider.example>"
        or "complaints team" in str(m.message["From"])
        for m in everything
    )


def test_the_team_leaders_told_of_an_overdue_first_response_get_it_in_the_cases_thread(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, complaint_id = opened(mailbot, capsys)
    assert mailbot("--now", TUESDAY_11AM, "tick") == 0

    notification, overdue = mailbot.staff_mail(TEAM_LEADER)
    assert "Nobody has replied to the customer" in overdue.text
    assert overdue.message["Subject"] == notification.message["Subject"] == f"[{ref}] {SUBJECT}"
    assert overdue.message["In-Reply-To"] == complaint_id
    assert references(overdue)[0] == complaint_id


def test_the_update_says_what_staff_last_told_the_customer_and_who_handles_it(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, _ = opened(mailbot, capsys)
    reply_from_terry(
        mailbot, ref, "Hello Alice,\n\nOur engineer found a fault at the cabinet.\n\nThanks,\nTerry"
    )
    assert mailbot("--now", TUESDAY_4PM, "tick") == 0

    update = mailbot.customer_mail()[-1]
    words = " ".join(update.text.split())
    assert "On Monday 23 November 2026, Terry Leader wrote to you:" in words
    assert "> Our engineer found a fault at the cabinet." in update.text
    assert "Thanks," not in update.text  # their words, not their sign-off
    assert "Terry Leader (Team Leader) is handling your complaint" in words
    assert "We will write to you again by Wednesday 25 November 2026 at 16:00" in words
    assert "Yours sincerely,\n\nTerry Leader\nTeam Leader," in update.text.replace("\r\n", "\n")


def test_a_reply_with_its_own_sign_off_reaches_the_customer_signed_once(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, _ = opened(mailbot, capsys)
    reply_from_terry(
        mailbot, ref, "Hello Alice,\n\nThe engineer comes Monday.\n\nKind regards,\nTerry"
    )

    relayed = mailbot.customer_mail()[-1]
    assert "The engineer comes Monday." in relayed.text
    assert relayed.text.count("regards") == 1 and "Yours sincerely" not in relayed.text
    assert "Terry Leader" not in relayed.text.split("The engineer comes Monday.")[1]


def test_after_deadlock_a_sign_off_alone_sends_the_customer_nothing_but_the_letter(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, _ = opened(mailbot, capsys)
    reply_from_terry(mailbot, ref, "#deadlock We have done all we can.\n\nKind regards, Terry")

    assert mailbot.customer_kinds() == ["acknowledgement", "deadlock_letter"]
    letter = mailbot.customer_mail()[-1]
    words = " ".join(letter.text.replace("\n> ", "\n").split())  # the quote as it reads
    assert "We have done all we can." in words
    assert "Yours sincerely, Terry Leader Team Leader" in words  # signed by who issued it
    assert f'You complained to us on Monday 23 November 2026 about "{SUBJECT}"' in words
    assert "My fibre broadband on account 12345678 has dropped every evening" in words


def test_letters_preview_prints_a_letter_as_it_would_go_for_a_sample_or_a_real_case(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mailbot("letters", "preview", "acknowledgement") == 0
    sample = capsys.readouterr().out
    assert sample.startswith("We have received your complaint (CMP-2026-000042)\n====")
    assert max(len(line) for line in sample.splitlines()) <= 72

    assert mailbot("letters", "preview", "adr_notice", "--html") == 0
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and 'lang="en-GB"' in page

    ref, _ = opened(mailbot, capsys)
    capsys.readouterr()
    assert mailbot("letters", "preview", "update", "--case", ref) == 0
    real = capsys.readouterr().out
    assert f"An update on your complaint ({ref})" in real and "Dear Alice Customer," in real
    assert mailbot.customer_kinds() == ["acknowledgement"]  # a preview queues nothing

    assert mailbot("letters", "preview", "no_such_letter") == 2
    assert "the letters: acknowledgement" in capsys.readouterr().err


def test_letters_render_writes_every_kind_as_eml_txt_and_html(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "letters"
    assert mailbot("letters", "render", "--output", str(out)) == 0

    written = {p.name for p in out.iterdir()}
    for kind in ("acknowledgement", "update", "resolution", "adr_notice", "deadlock_letter"):
        assert {f"{kind}.eml", f"{kind}.txt", f"{kind}.html"} <= written
    assert {"staff_notification.eml", "staff_notification.txt"} <= written
    assert "staff_notification.html" not in written  # to staff: plain text
    assert b"multipart/alternative" in (out / "resolution.eml").read_bytes()


@pytest.mark.sqlite_only  # a file that is not there: SQLite's case
def test_letters_are_shown_without_making_a_database_and_a_case_asked_of_none_is_refused(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Path(mailbot.db_url.removeprefix("sqlite:///"))
    assert not database.exists()

    assert mailbot("letters", "render", "--output", str(tmp_path / "letters")) == 0
    assert mailbot("letters", "preview", "acknowledgement") == 0
    assert not database.exists(), "an operator reading letters changes nothing"

    capsys.readouterr()
    assert mailbot("letters", "preview", "update", "--case", "CMP-2026-000001") == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "no case CMP-2026-000001" in line and "does not exist" in line
