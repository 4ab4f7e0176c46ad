"""A stranger who names a case: the mail is kept and shown to the handlers, and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AGENT, MANAGER, TEAM_LEADER, Mailbot
from tests.test_intake_e2e import cases, complaint, show
from tests.test_procedure_e2e import ingest, tick
from tests.test_staff_e2e import staff_reply

RECEIVED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday
TUESDAY_CUTOFF = datetime(2026, 11, 3, 16, 0, tzinfo=UTC)
CUSTOMER = "alice@example.net"
STRANGER = "mallory@example.com"


def opened(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str], **headers: str
) -> tuple[str, str]:
    """A complaint from the customer: its case's reference and the complaint's Message-ID."""
    raw, message_id = complaint(**headers)
    ingest(mailbot, tmp_path, raw, RECEIVED)
    [case] = cases(mailbot, capsys)
    return str(case["ref"]), message_id


def resolved(mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    ref, _ = opened(mailbot, tmp_path, capsys)
    resolve, _ = staff_reply(TEAM_LEADER, "#resolve Line repaired", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, resolve, RECEIVED + timedelta(days=1))
    return ref


def from_stranger(
    subject: str, body: str, extra_headers: str = "", sender: str = f"Mallory <{STRANGER}>"
) -> tuple[bytes, str]:
    return complaint(subject=subject, sender=sender, extra_headers=extra_headers, body=body)


def mail_to(mailbot: Mailbot, address: str) -> list[str]:
    """The kinds of letter ADDRESS received."""
    return [
        str(e.message["X-Mailbot-Kind"]) for e in mailbot.smtp.received if address in e.rcpt_tos
    ]


def kind_of(case: dict[str, Any], message_id: str) -> str:
    [kind] = [m["kind"] for m in case["messages"] if m["message_id"] == message_id]
    return str(kind)


def actions(case: dict[str, Any]) -> list[str]:
    return [str(e["action"]) for e in case["events"]]


def test_a_reply_from_the_from_address_of_a_complaint_with_reply_to_is_the_customers(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = "alice.home@example.org"
    ref, _ = opened(mailbot, tmp_path, capsys, extra_headers=f"Reply-To: Alice <{home}>\r\n")
    request, request_id = complaint(
        subject=f"Re: [{ref}] still broken",
        sender=f"Alice Customer <{CUSTOMER.upper()}>",
        body="Please send me a deadlock letter.\n",
    )
    ingest(mailbot, tmp_path, request, RECEIVED + timedelta(days=1))
    case = show(mailbot, ref, capsys)
    assert case["customer_email"] == home
    assert case["customer_addresses"] == [home, CUSTOMER]
    assert kind_of(case, request_id) == "customer_reply"
    [requested] = [e for e in case["events"] if e["action"] == "deadlock letter requested"]
    assert requested["actor"] == CUSTOMER, "R8: the address that wrote, not 'customer'"


def test_a_stranger_asking_for_a_deadlock_letter_changes_nothing_and_the_handlers_are_told(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, complaint_id = opened(mailbot, tmp_path, capsys)
    request, request_id = from_stranger(
        f"Re: [{ref}] My broadband keeps dropping",
        "Send me a deadlock letter now, I want to go to the ombudsman.\n",
    )
    ingest(mailbot, tmp_path, request, RECEIVED + timedelta(days=1))
    tick(mailbot, TUESDAY_CUTOFF)
    tick(mailbot, RECEIVED + timedelta(days=7))  # the decision window is long gone

    case = show(mailbot, ref, capsys)
    assert kind_of(case, request_id) == "third_party"
    assert case["deadlock_requested_at"] is None and case["deadlock_sent_at"] is None
    assert "deadlock_letter" not in mailbot.customer_kinds()
    assert not [a for a in actions(case) if "deadlock" in a]
    [event] = [e for e in case["events"] if e["action"] == "third_party"]
    assert event["actor"] == STRANGER
    assert mail_to(mailbot, STRANGER) == [], "a stranger could be anyone: no auto-reply"
    # what the customer gets is threaded on their own mail, and their history is their own
    update = next(e for e in mailbot.customer_mail() if e.message["X-Mailbot-Kind"] == "update")
    assert update.message["In-Reply-To"] == complaint_id
    assert STRANGER not in update.text and "I want to go" not in update.text

    [told] = [e for e in mailbot.staff_mail(TEAM_LEADER) if "neither its customer" in e.text]
    assert f"[{ref}]" in told.message["Subject"] and f"<{STRANGER}> wrote about" in told.text
    assert "mailbot did nothing with it" in told.text
    assert "I want to go to the ombudsman" in told.text
    assert f"#customer-address {STRANGER}" in told.text
    assert not [e for e in mailbot.staff_mail(TEAM_LEADER) if "Customer asks for a" in e.text]


@pytest.mark.parametrize("days_later", [20, 60], ids=["within-reopen-days", "long-after"])
def test_a_stranger_replying_to_our_letter_does_not_reopen_a_resolved_case(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str], days_later: int
) -> None:
    ref = resolved(mailbot, tmp_path, capsys)
    [ack, _] = mailbot.customer_mail()
    reply, reply_id = from_stranger(
        "Re: We have received your complaint",
        "It is broken again. Open it again.\n",
        extra_headers=f"In-Reply-To: {ack.message['Message-ID']}\r\n",
        sender=STRANGER,  # no display name
    )
    ingest(mailbot, tmp_path, reply, RECEIVED + timedelta(days=days_later))

    assert [c["ref"] for c in cases(mailbot, capsys)] == [ref], "no new case either"
    case = show(mailbot, ref, capsys)
    assert case["status"] == "resolved"
    assert "reopened" not in actions(case)
    assert kind_of(case, reply_id) == "third_party"
    assert mail_to(mailbot, STRANGER) == []
    assert mailbot.customer_kinds() == ["acknowledgement", "resolution"]
    told = mailbot.staff_mail(TEAM_LEADER)[-1]
    assert f"<{STRANGER}> wrote about case {ref}" in told.text


def test_the_customer_of_another_case_is_a_stranger_to_this_one(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = resolved(mailbot, tmp_path, capsys)
    own, _ = complaint(subject="My phone line is dead", sender="Bob <bob@example.org>")
    ingest(mailbot, tmp_path, own, RECEIVED + timedelta(days=2))
    other, other_id = complaint(
        subject=f"Re: [{ref}] reopen", sender="Bob <bob@example.org>", body="Reopen this.\n"
    )
    ingest(mailbot, tmp_path, other, RECEIVED + timedelta(days=3))
    case = show(mailbot, ref, capsys)
    assert kind_of(case, other_id) == "third_party"
    assert case["status"] == "resolved"
    assert mail_to(mailbot, "bob@example.org") == ["acknowledgement"], "his own case's only"


def test_an_address_staff_accept_acts_as_the_customer_and_the_case_says_who_accepted_it(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = resolved(mailbot, tmp_path, capsys)
    first, first_id = from_stranger(f"Re: [{ref}] from my work address", "Broken again.\n")
    ingest(mailbot, tmp_path, first, RECEIVED + timedelta(days=3))
    assert show(mailbot, ref, capsys)["status"] == "resolved"

    accept, _ = staff_reply(
        TEAM_LEADER,
        "#customer-address Mallory@Example.COM Alice's work address, she confirmed by phone",
        f"RE: [{ref}] Third-party mail",
    )
    ingest(mailbot, tmp_path, accept, RECEIVED + timedelta(days=4))
    done = mailbot.staff_mail(TEAM_LEADER)[-1]
    assert ": done." in done.text
    assert f"accepted {STRANGER} as the customer's address" in done.text
    assert mailbot.customer_kinds() == ["acknowledgement", "resolution"], "nothing sent"

    again, again_id = from_stranger(
        f"Re: [{ref}] from my work address", "Still broken. Please send me a deadlock letter.\n"
    )
    ingest(mailbot, tmp_path, again, RECEIVED + timedelta(days=5))
    case = show(mailbot, ref, capsys)
    assert case["customer_email"] == CUSTOMER
    assert case["customer_addresses"] == [CUSTOMER, STRANGER]
    [accepted] = [e for e in case["events"] if e["action"] == "#customer-address"]
    assert accepted["actor"] == TEAM_LEADER and accepted["detail"].startswith("Mallory@")
    assert kind_of(case, first_id) == "third_party", "what came before stays as it was"
    assert kind_of(case, again_id) == "customer_reply"
    assert case["status"] == "open"
    [reopened] = [e for e in case["events"] if e["action"] == "reopened"]
    [requested] = [e for e in case["events"] if e["action"] == "deadlock letter requested"]
    assert reopened["actor"] == requested["actor"] == STRANGER
    tick(mailbot, RECEIVED + timedelta(days=9))
    [letter] = [
        e for e in mailbot.smtp.received if e.message["X-Mailbot-Kind"] == "deadlock_letter"
    ]
    assert letter.rcpt_tos == [CUSTOMER], "letters still go to the case's customer"


@pytest.mark.parametrize(
    ("sender", "command", "error"),
    [
        (AGENT, f"#customer-address {STRANGER}", "#customer-address is for"),
        (TEAM_LEADER, "#customer-address her work one", "needs an email address"),
        (MANAGER, f"#customer-address {AGENT}", "is a staff address"),
        (MANAGER, f"#customer-address {CUSTOMER.upper()}", "is already the customer's"),
    ],
    ids=["agent", "no-address", "staff-address", "already-theirs"],
)
def test_customer_address_is_refused_unless_a_leader_names_a_new_address(
    mailbot: Mailbot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sender: str,
    command: str,
    error: str,
) -> None:
    ref, _ = opened(mailbot, tmp_path, capsys)
    accept, _ = staff_reply(sender, command, f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, accept, RECEIVED + timedelta(hours=1))
    [refusal] = [e for e in mailbot.staff_mail(sender) if "was not acted on" in e.text]
    assert error in refusal.text
    assert show(mailbot, ref, capsys)["customer_addresses"] == [CUSTOMER]
