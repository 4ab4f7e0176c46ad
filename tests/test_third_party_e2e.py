"""A stranger who names a case: the mail is kept and shown to the handlers, and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_intake_e2e import cases, complaint, show
from tests.test_procedure_e2e import ingest
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
