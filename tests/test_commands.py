"""Staff commands: `#command argument` lines in the new part of a staff reply."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace
from typing import Any

import pytest

from mailbot.procedure.commands import COMMANDS, Command, Role, known, read_commands
from mailbot.templating import Templates


def test_resolve_with_a_summary_is_read() -> None:
    reply = read_commands("#resolve Fixed", Role.AGENT)
    assert reply.commands == (Command("resolve", "Fixed"),)
    assert reply.errors == ()


def test_a_capitalised_command_as_outlook_writes_it_is_read() -> None:
    reply = read_commands("#Resolve Router replaced", Role.AGENT)
    assert reply.commands == (Command("resolve", "Router replaced"),)
    assert reply.errors == ()


def test_an_unknown_command_is_an_error_that_names_the_known_commands() -> None:
    reply = read_commands("#foo bar", Role.MANAGER)
    assert reply.commands == ()
    assert len(reply.errors) == 1
    assert "#foo" in reply.errors[0]
    for name in COMMANDS:
        assert f"#{name}" in reply.errors[0]


@pytest.mark.parametrize("line", ["#resolve", "#escalate", "#updates", "#new", "#reopen  "])
def test_a_command_that_needs_an_argument_without_one_is_an_error(line: str) -> None:
    reply = read_commands(line, Role.MANAGER)
    assert reply.commands == ()
    assert len(reply.errors) == 1
    assert "needs an argument" in reply.errors[0]


def test_an_agent_cannot_escalate() -> None:
    reply = read_commands("#escalate customer is threatening to leave", Role.AGENT)
    assert reply.commands == ()
    assert len(reply.errors) == 1
    assert "#escalate" in reply.errors[0]
    assert "agent" in reply.errors[0]


@pytest.mark.parametrize("role", [Role.TEAM_LEADER, Role.MANAGER])
def test_team_leaders_and_managers_can_escalate(role: Role) -> None:
    reply = read_commands("#escalate customer is threatening to leave", role)
    assert reply.commands == (Command("escalate", "customer is threatening to leave"),)
    assert reply.errors == ()


def test_an_agent_can_resolve_note_and_agree_an_update_interval() -> None:
    reply = read_commands("#note\n#resolve Fixed\n#updates 3", Role.AGENT)
    assert reply.errors == ()
    assert reply.commands == (
        Command("note", ""),
        Command("resolve", "Fixed"),
        Command("updates", "3"),
    )
    assert reply.commands[2].update_interval == 3


@pytest.mark.parametrize(("word", "days"), [("weekly", 5), ("Weekly", 5), ("none", 0), ("1", 1)])
def test_updates_takes_a_number_of_working_days_weekly_or_none(word: str, days: int) -> None:
    reply = read_commands(f"#updates {word}", Role.AGENT)
    assert reply.errors == ()
    assert [c.update_interval for c in reply.commands] == [days]


@pytest.mark.parametrize("word", ["25", "0", "fortnightly", "-3"])
def test_updates_rejects_anything_else(word: str) -> None:
    reply = read_commands(f"#updates {word}", Role.AGENT)
    assert reply.commands == ()
    assert len(reply.errors) == 1
    assert "#updates" in reply.errors[0]


def test_refusing_a_deadlock_request_needs_a_reason() -> None:
    reply = read_commands("#deadlock refuse", Role.TEAM_LEADER)
    assert reply.commands == ()
    assert len(reply.errors) == 1
    assert "reason" in reply.errors[0]


def test_refusing_a_deadlock_request_with_a_reason_is_read() -> None:
    reply = read_commands("#deadlock refuse engineer booked for Tuesday", Role.TEAM_LEADER)
    assert reply.errors == ()
    assert [c.refusal for c in reply.commands] == ["engineer booked for Tuesday"]


@pytest.mark.parametrize(
    "line",
    [
        "#deadlock refuse\tengineer booked for Tuesday",
        "#deadlock refuse: engineer booked for Tuesday",
        "#Deadlock Refuse engineer booked for Tuesday",
    ],
)
def test_a_refusal_is_read_as_a_refusal_whichever_separator_staff_type(line: str) -> None:
    # read wrongly, a refusal would send the deadlock letter instead: once per case, for good
    reply = read_commands(line, Role.TEAM_LEADER)
    assert reply.errors == ()
    assert [c.refusal for c in reply.commands] == ["engineer booked for Tuesday"]


@pytest.mark.parametrize("line", ["#deadlock refuse:", "#deadlock refuse\t", "#deadlock REFUSE  "])
def test_a_refusal_without_a_reason_is_rejected_whichever_separator_staff_type(line: str) -> None:
    reply = read_commands(line, Role.TEAM_LEADER)
    assert reply.commands == ()
    assert len(reply.errors) == 1


def test_deadlock_with_no_argument_sends_the_letter() -> None:
    reply = read_commands("#deadlock", Role.TEAM_LEADER)
    assert reply.errors == ()
    assert reply.commands == (Command("deadlock", ""),)
    assert reply.commands[0].refusal is None


def test_an_agent_cannot_issue_a_deadlock_letter() -> None:
    reply = read_commands("#deadlock", Role.AGENT)
    assert reply.commands == ()
    assert len(reply.errors) == 1


def test_new_case_with_an_email_address_and_name_is_read() -> None:
    reply = read_commands("#new bob@example.org Bob", Role.TEAM_LEADER)
    assert reply.errors == ()
    assert reply.commands == (Command("new", "bob@example.org Bob"),)


def test_new_case_without_an_email_address_is_rejected() -> None:
    reply = read_commands("#new bob", Role.TEAM_LEADER)
    assert reply.commands == ()
    assert len(reply.errors) == 1
    assert "'bob'" in reply.errors[0]


def test_command_lines_are_removed_from_the_text_and_other_lines_kept() -> None:
    text = (
        "Hello Bob,\n\nThe engineer replaced your router.\n#resolve Router replaced\n\n"
        "Regards,\nAnn"
    )
    reply = read_commands(text, Role.AGENT)
    assert reply.commands == (Command("resolve", "Router replaced"),)
    assert reply.text == "Hello Bob,\n\nThe engineer replaced your router.\n\nRegards,\nAnn"


def test_command_lines_at_the_top_leave_no_leading_blank_lines() -> None:
    reply = read_commands("#updates weekly\nHello Bob,\nWe will write every week.", Role.AGENT)
    assert reply.text == "Hello Bob,\nWe will write every week."


@pytest.mark.parametrize(
    "line",
    ["#1 priority for us is your line", "We hired a C# developer", "Call us on #123#", "# heading"],
)
def test_a_line_that_merely_contains_a_hash_is_not_a_command(line: str) -> None:
    text = f"Hello,\n{line}\nThanks"
    reply = read_commands(text, Role.AGENT)
    assert reply.commands == ()
    assert reply.errors == ()
    assert reply.text == text


def test_the_same_command_twice_in_one_reply_is_an_error() -> None:
    reply = read_commands("#resolve Fixed\n#resolve Fixed again", Role.AGENT)
    assert any("once" in error for error in reply.errors)


# What a client puts between the new text of a reply and the mail it answers.
HISTORY = {
    "a quoted line": "> Can you refund the delivery fee as well?",
    "an attribution": (
        "On Mon, 23 Nov 2026 at 10:05, Provider Complaints <complaints@provider.example> wrote:"
    ),
    "an Outlook header block": (
        "From: Provider Complaints <complaints@provider.example>\n"
        "Sent: Monday, 23 November 2026 10:05\n"
        "To: Terry Leader <tl@provider.example>\n"
        "Subject: [CMP-2026-000001] New complaint: My broadband keeps dropping"
    ),
    "an original-message marker": "-----Original Message-----",
    "the first line of our letters to staff": "----- Please reply above this line -----",
}


@pytest.mark.parametrize("history", HISTORY.values(), ids=HISTORY)
def test_a_command_under_quoted_history_is_refused_and_never_run(history: str) -> None:
    text = f"Thanks, I am looking into it.\n\n{history}\n#deadlock We offered a £20 credit."
    reply = read_commands(text, Role.TEAM_LEADER)
    assert reply.commands == ()
    assert len(reply.errors) == 1
    assert "#deadlock is below the quoted text" in reply.errors[0]


def test_a_hashtag_under_quoted_history_is_only_text() -> None:
    text = "Thanks, I am looking into it.\n\n> My line is down again\n#fail #brokenbroadband"
    reply = read_commands(text, Role.AGENT)
    assert reply.commands == ()
    assert reply.errors == ()
    assert reply.text == text


def test_each_command_is_written_with_a_single_hash_so_no_wrapping_starts_a_line_with_one() -> None:
    for name, spec in COMMANDS.items():
        assert spec.usage.startswith(f"#{name}")
        assert spec.usage.count("#") == 1, spec.usage


def lines_read_as_commands(letter: str) -> list[str]:
    """The lines of LETTER that read as a command (or as a wrong one) once a client has
    quoted them back: unindented, without quote marks, or wrapped at 40 columns or more."""
    variants: list[str] = []
    for line in letter.splitlines():
        variants.append(line.lstrip(" \t>"))
        for width in range(40, 101):
            variants += textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
    read = [(variant, read_commands(variant, Role.MANAGER)) for variant in set(variants)]
    return sorted(variant for variant, reply in read if reply.commands or reply.errors)


def staff_letter(kind: str, **context: Any) -> str:
    """The letter to staff of KIND, for a case made up here."""
    case = SimpleNamespace(
        ref="CMP-2026-000001",
        customer_name="Alice Customer",
        customer_email="alice@example.net",
        level="team_leader",
        status="open",
    )
    return Templates("Europe/London").render(kind, {"case": case, **context})


def test_no_line_of_a_notification_reads_as_a_command_however_a_client_quotes_it() -> None:
    notification = staff_letter(
        "staff_notification",
        headline="New complaint",
        received="Monday 23 November 2026 at 10:00",
        due="Tuesday 24 November 2026 at 10:00",
        missing=["name"],
        attachments=[],
        text="My fibre broadband has dropped every evening this week.",
        complaints_address="complaints@provider.example",
        commands=COMMANDS.values(),
    )
    assert '"#resolve SUMMARY"' in notification
    assert lines_read_as_commands(notification) == []


def test_no_line_of_an_error_reply_reads_as_a_command_however_a_client_quotes_it() -> None:
    wrong = ["#resolv Fixed", "#escalate", "#updates often", "#deadlock refuse", "#new bob"]
    errors = [error for line in wrong for error in read_commands(line, Role.AGENT).errors]
    errors += read_commands("Thanks.\n> quoted\n#note", Role.AGENT).errors
    error_reply = staff_letter(
        "staff_error", subject="RE: [CMP-2026-000001] x", errors=errors, known=known()
    )
    assert len(errors) == len(wrong) + 1 and "#resolve" in error_reply
    assert lines_read_as_commands(error_reply) == []


def test_no_line_of_a_third_party_notice_reads_as_a_command_however_a_client_quotes_it() -> None:
    notice = staff_letter(
        "third_party_staff",
        writer=SimpleNamespace(name="Bob", email="bob@example.org"),
        deadlock_words="deadlock letter",
        attachments=[],
        text="Please send the deadlock letter to my sister.",
    )
    assert '"#customer-address bob@example.org"' in notice
    assert lines_read_as_commands(notice) == []


def test_no_line_of_a_held_letter_notice_reads_as_a_command_however_a_client_quotes_it() -> None:
    notice = staff_letter(
        "letter_held_staff",
        letter="the ADR notice",
        reason="the address bounced (5.1.1 permanent bounce)",
        address="alice@example.net",
        received="Monday 2 November 2026 at 10:00",
        adr_date="Monday 28 December 2026",
    )
    assert lines_read_as_commands(notice) == []
