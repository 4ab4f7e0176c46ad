"""Staff work cases from their own mail client: notifications, replies, commands, forgeries."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from typing import Any

import pytest

from tests.conftest import AGENT, MANAGER, TEAM_LEADER, Mailbot
from tests.test_commands import lines_read_as_commands
from tests.test_intake_e2e import complaint
from tests.test_staff_on_exchange_online import (
    ALL_FORGERIES,
    FORGED_FROM_OUTSIDE,
    INCOMING,
    INTRA_TENANT_RESULTS,
    RECEIVED_IN_TENANT,
    TENANT,
    tenant_stamps,
)

MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CUSTOMER = "alice@example.net"
TRUSTED = (
    "Authentication-Results: mx.provider.example; dkim=pass header.d=provider.example; "
    "dmarc=pass (p=reject) header.from=provider.example\r\n"
)


ATTRIBUTION = (
    "On Mon, 23 Nov 2026 at 10:05, Provider Complaints <complaints@provider.example> wrote:"
)


def staff_reply(
    sender: str,
    body: str,
    subject: str,
    in_reply_to: str | None = None,
    auth: str = TRUSTED,
    to: str = "complaints@provider.example",
    quoted: str = "My fibre broadband has dropped every evening this week.",
    history: str | None = None,
) -> tuple[bytes, str]:
    """A reply as Outlook or Gmail writes it: new text, an attribution, the quoted history
    (or HISTORY: the mail answered, as the client quoted it)."""
    message_id = make_msgid(domain="provider.example")
    threading = (
        f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    )
    if history is None:
        history = f"{ATTRIBUTION}\n> {quoted}\n> Regards, Alice\n"
    text = f"{body}\n\n{history}"
    raw = (
        f"{auth}From: Staff <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 23 Nov 2026 11:00:00 +0000\r\nMessage-ID: {message_id}\r\n{threading}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + text.replace("\n", "\r\n")
    )
    return raw.encode(), message_id


def show(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    [case] = json.loads(capsys.readouterr().out)
    assert isinstance(case, dict)
    return case


def opened(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    """A complaint processed; returns the case and the team leader's notification Message-ID."""
    raw, _ = complaint()
    mailbot.append(raw, MONDAY_10AM)
    assert mailbot("run", "--once") == 0
    [notification] = mailbot.staff_mail(TEAM_LEADER)
    return show(mailbot, capsys), str(notification.message["Message-ID"])


def test_a_new_complaint_is_sent_to_the_team_leaders_to_answer_by_reply(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    case, _ = opened(mailbot, capsys)
    [notification] = mailbot.staff_mail(TEAM_LEADER)
    message = notification.message
    assert message["Subject"] == f"[{case['ref']}] My broadband keeps dropping"  # the case's one
    assert f"New complaint on case {case['ref']}." in notification.text
    assert message["Reply-To"] == "complaints@provider.example"
    assert "has dropped every evening" in notification.text
    assert "First response due: Monday 23 November 2026 at 18:30" not in notification.text
    assert "First response due: Tuesday 24 November 2026 at 10:00" in notification.text
    assert "#resolve SUMMARY" in notification.text
    assert mailbot.staff_mail(AGENT) == [] and mailbot.staff_mail(MANAGER) == []


def test_a_verified_staff_reply_reaches_the_customer_trimmed_and_threaded(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    case, notification_id = opened(mailbot, capsys)
    raw, _ = staff_reply(
        TEAM_LEADER,
        "Hello Alice,\n\nWe have found a fault on your line and an engineer will visit on "
        "Wednesday.\n#updates 3",
        subject=f"RE: [{case['ref']}] New complaint: My broadband keeps dropping",
        in_reply_to=notification_id,
    )
    mailbot.append(raw)
    assert mailbot("run", "--once") == 0

    [ack, relayed] = mailbot.customer_mail()
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert relayed.rcpt_tos == [CUSTOMER]
    assert f"[{case['ref']}]" in relayed.message["Subject"]
    assert relayed.message["In-Reply-To"] == case["messages"][0]["message_id"]
    assert "Auto-Submitted" not in relayed.message, "a person wrote this reply"
    assert "an engineer will visit on Wednesday" in " ".join(relayed.text.split())  # 72 columns
    assert "Terry Leader" in relayed.text
    assert "wrote:" not in relayed.text and "Regards, Alice" not in relayed.text
    assert "#updates" not in relayed.text
    after = show(mailbot, capsys)
    assert after["update_interval_days"] == 3
    assert after["update_interval_agreed_by"] == TEAM_LEADER
    assert after["first_staff_reply_at"] is not None
    kinds = [(m["direction"], m["kind"]) for m in after["messages"]]
    assert ("in", "staff_reply") in kinds and ("out", "staff_reply") in kinds
    [confirmation] = [e for e in mailbot.staff_mail(TEAM_LEADER) if ": done." in e.text]
    assert f"sent your reply to {CUSTOMER}" in confirmation.text
    assert "set updates to every 3 working days" in confirmation.text


@pytest.mark.parametrize(
    "auth",
    [
        "",
        "Authentication-Results: mx.attacker.example; dmarc=pass header.from=provider.example\r\n",
        "Authentication-Results: mx.provider.example; dmarc=fail header.from=provider.example\r\n",
    ],
    ids=["no-header", "untrusted-authserv-id", "dmarc-fail"],
)
def test_an_unverified_staff_address_changes_nothing_and_the_managers_are_told(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str], auth: str
) -> None:
    case, notification_id = opened(mailbot, capsys)
    raw, _ = staff_reply(
        TEAM_LEADER,
        "Case closed.\n#resolve nothing to do",
        f"RE: [{case['ref']}] x",
        notification_id,
        auth=auth,
    )
    mailbot.append(raw)
    assert mailbot("run", "--once") == 0
    assert len(mailbot.customer_mail()) == 1, "only the acknowledgement"
    after = show(mailbot, capsys)
    assert after["status"] == "open"
    assert "staff_unverified" in [m["kind"] for m in after["messages"]]
    [alert] = mailbot.staff_mail(MANAGER)
    assert "A message claiming to come from tl@provider.example was not" in alert.text


def test_a_reply_from_outlook_on_exchange_online_is_applied_and_its_forged_twin_is_not(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    """The desk on Microsoft 365: no authserv-id, dmarc=none between colleagues, and the
    tenant's own stamps; the twin carries every stamp a forger can copy or invent."""
    config = mailbot.config.read_text()
    mailbot.config.write_text(
        config.replace(
            'require = "dmarc"\n', f'require = "dmarc"\nexchange_online_tenant_id = "{TENANT}"\n'
        )
    )
    case, notification_id = opened(mailbot, capsys)
    body = "Hello Alice, the engineer repaired the line this morning.\n#resolve line repaired"
    subject = f"RE: [{case['ref']}] New complaint: My broadband keeps dropping"
    forged, _ = staff_reply(
        TEAM_LEADER, body, subject, notification_id, FORGED_FROM_OUTSIDE + ALL_FORGERIES + INCOMING
    )
    mailbot.append(forged)
    assert mailbot("run", "--once") == 0
    assert show(mailbot, capsys)["status"] == "open"
    assert mailbot.customer_kinds() == ["acknowledgement"]
    [alert] = mailbot.staff_mail(MANAGER)
    assert "A message claiming to come from tl@provider.example was not" in alert.text
    assert "dmarc=fail" in alert.text

    genuine, _ = staff_reply(
        TEAM_LEADER,
        body,
        subject,
        notification_id,
        RECEIVED_IN_TENANT + INTRA_TENANT_RESULTS + tenant_stamps(),
    )
    mailbot.append(genuine)
    assert mailbot("run", "--once") == 0
    after = show(mailbot, capsys)
    assert (after["status"], after["resolution_summary"]) == ("resolved", "line repaired")
    kinds = [m["kind"] for m in after["messages"] if m["direction"] == "in"]
    assert kinds.count("staff_unverified") == 1
    assert mailbot.customer_kinds() == ["acknowledgement", "resolution", "staff_reply"]
    assert len(mailbot.staff_mail(MANAGER)) == 1, "no alert for the genuine reply"


@pytest.mark.parametrize(
    ("command", "expect", "letters"),
    [
        (
            "#resolve Refund of £10 issued",
            {"status": "resolved", "resolution_summary": "Refund of £10 issued"},
            ["resolution"],
        ),
        ("#escalate customer wants a manager", {"level": "manager"}, ["escalation_notice"]),
        ("#updates weekly", {"update_interval_days": 5}, []),
        ("#updates none", {"update_interval_days": 0}, []),
        ("#vexatious abusive messages", {"flags": ["vexatious"]}, []),
        ("#out-of-scope business contract", {"flags": ["out_of_scope"]}, []),
        (
            "#deadlock We offered a £20 credit.",
            {"deadlock_position": "We offered a £20 credit."},
            ["deadlock_letter"],
        ),
        ("#Resolve capitalised by Outlook", {"status": "resolved"}, ["resolution"]),
    ],
)
def test_each_command_changes_the_case_and_is_recorded(
    mailbot: Mailbot,
    capsys: pytest.CaptureFixture[str],
    command: str,
    expect: dict[str, Any],
    letters: list[str],
) -> None:
    case, notification_id = opened(mailbot, capsys)
    raw, _ = staff_reply(
        TEAM_LEADER, f"{command}\n#note", f"RE: [{case['ref']}] x", notification_id
    )
    mailbot.append(raw)
    assert mailbot("run", "--once") == 0
    after = show(mailbot, capsys)
    for key, value in expect.items():
        assert after[key] == value
    name = command.split()[0].lower()
    [event] = [e for e in after["events"] if e["action"] == name]
    assert event["actor"] == TEAM_LEADER
    assert event["detail"] == command.partition(" ")[2]
    # #note: no relayed text; only the letter the command itself sends
    assert mailbot.customer_kinds() == ["acknowledgement", *letters]


@pytest.mark.parametrize(
    ("sender", "body", "error"),
    [
        (TEAM_LEADER, "Thanks.\n#resolv typo", "#resolv is not a command I know"),
        (TEAM_LEADER, "#escalate", "#escalate needs an argument"),
        (TEAM_LEADER, "#updates often", "#updates takes 1 to 20"),
        (AGENT, "I will pass this on.\n#escalate too hard", "#escalate is for"),
        (TEAM_LEADER, "#reopen why", "is open, there is nothing to reopen"),
    ],
)
def test_a_bad_command_gets_an_error_reply_and_nothing_reaches_the_customer(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str], sender: str, body: str, error: str
) -> None:
    case, notification_id = opened(mailbot, capsys)
    raw, _ = staff_reply(sender, body, f"RE: [{case['ref']}] x", notification_id)
    mailbot.append(raw)
    assert mailbot("run", "--once") == 0
    assert len(mailbot.customer_mail()) == 1
    [refusal] = [e for e in mailbot.staff_mail(sender) if "was not acted on" in e.text]
    assert error in refusal.text
    after = show(mailbot, capsys)
    assert (after["status"], after["level"], after["update_interval_days"]) == (
        "open",
        "team_leader",
        1,
    )
    assert mailbot.folder_count("INBOX") == 0


def test_a_note_reaches_nobody_and_reply_all_is_not_sent_twice(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    case, notification_id = opened(mailbot, capsys)
    note, _ = staff_reply(
        TEAM_LEADER,
        "#note she called again, very upset",
        f"RE: [{case['ref']}] x",
        notification_id,
    )
    reply_all, _ = staff_reply(
        AGENT,
        "Dear Alice, the engineer is booked.",
        f"RE: [{case['ref']}] x",
        notification_id,
        to=f"complaints@provider.example, Alice <{CUSTOMER}>",
    )
    mailbot.append(note)
    mailbot.append(reply_all)
    assert mailbot("run", "--once") == 0
    assert len(mailbot.customer_mail()) == 1, "only the acknowledgement: nothing relayed"
    after = show(mailbot, capsys)
    assert "staff_note" in [m["kind"] for m in after["messages"]]
    assert "wrote to the customer directly" in [e["action"] for e in after["events"]]
    assert after["first_staff_reply_at"] is not None


def test_new_opens_a_case_for_a_postal_complaint_and_acknowledges_the_customer(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = staff_reply(
        TEAM_LEADER,
        "#new bob@example.org Bob Postal\nLetter received today: his landline has been "
        "dead for a week and nobody came to fix it. Account 7766554.",
        subject="Postal complaint from Mr Postal",
    )
    mailbot.append(raw, MONDAY_10AM)
    assert mailbot("run", "--once") == 0
    case = show(mailbot, capsys)
    assert (case["customer_email"], case["customer_name"]) == ("bob@example.org", "Bob Postal")
    [ack] = mailbot.customer_mail()
    assert ack.rcpt_tos == ["bob@example.org"]
    assert case["ref"] in ack.message["Subject"]
    assert "Letter received today" not in ack.text


FOOTER = "This email and any attachments are confidential to Provider Ltd."


def gmail(letter: str) -> str:
    return ATTRIBUTION + "\n" + "".join(f"> {line}\n" for line in letter.splitlines())


# How mail clients quote the letter a staff member answers, below their new text.
QUOTING: dict[str, Callable[[str], str]] = {
    "outlook": lambda letter: (
        "From: Provider Complaints <complaints@provider.example>\n"
        "Sent: Monday, 23 November 2026 11:05\n"
        "To: Terry Leader <tl@provider.example>\n"
        "Subject: [CMP-2026-000001] Customer asks for a deadlock letter\n\n" + letter
    ),
    "gmail": gmail,
    "gmail, with the mail server's footer below": lambda letter: f"{gmail(letter)}\n{FOOTER}\n",
    "pasted unindented, with no header or quote marks": lambda letter: "".join(
        f"{line.strip()}\n" for line in letter.splitlines()
    ),
}


@pytest.mark.parametrize("quoting", QUOTING.values(), ids=QUOTING)
def test_a_reply_quoting_our_notification_runs_no_command_and_relays_only_its_new_text(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str], quoting: Callable[[str], str]
) -> None:
    case, _ = opened(mailbot, capsys)
    asks, _ = complaint(
        subject=f"Re: [{case['ref']}] My broadband keeps dropping",
        body="Nobody has called me. Please send me a deadlock letter.\n",
    )
    mailbot.append(asks, MONDAY_10AM + timedelta(hours=1))
    assert mailbot("run", "--once") == 0
    [told] = [e for e in mailbot.staff_mail(TEAM_LEADER) if "asks for a deadlock letter" in e.text]
    assert '"#deadlock refuse REASON"' in told.text
    assert lines_read_as_commands(told.text) == []

    sentence = "Thank you, Alice: an engineer will call you tomorrow morning."
    raw, _ = staff_reply(
        TEAM_LEADER,
        sentence,
        f"RE: {told.message['Subject']}",
        str(told.message["Message-ID"]),
        history=quoting(told.text),
    )
    mailbot.append(raw)
    assert mailbot("run", "--once") == 0

    after = show(mailbot, capsys)
    assert (after["status"], after["level"], after["flags"]) == ("open", "team_leader", [])
    assert after["deadlock_requested_at"] is not None and after["deadlock_sent_at"] is None
    assert after["update_interval_days"] == 1
    assert mailbot.customer_kinds() == ["acknowledgement", "staff_reply"]
    relayed = mailbot.customer_mail()[-1].text
    assert sentence in " ".join(relayed.split())  # filled to 72 columns
    for ours in ("reply above this line", "Customer asks", "#", FOOTER):
        assert ours not in relayed
    [done] = [e for e in mailbot.staff_mail(TEAM_LEADER) if ": done." in e.text]
    assert f"sent your reply to {CUSTOMER}" in done.text
    assert not [e for e in mailbot.staff_mail(TEAM_LEADER) if "was not acted on" in e.text]
