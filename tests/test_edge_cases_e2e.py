"""The procedure's own edge cases on real servers: chases, held letters, RFC 6531, R2's hold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from mailbot.store import db
from mailbot.store.models import Suppression
from sandbox import Dovecot, SmtpSink
from tests.conftest import MANAGER, TEAM_LEADER, Mailbot, write_config
from tests.test_defences_e2e import bounce_for
from tests.test_intake_e2e import complaint
from tests.test_procedure_e2e import FRIDAY_4PM, MONDAY_4PM, at, deadlock_case, ingest, tick
from tests.test_staff_e2e import staff_reply

RECEIVED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday
CUSTOMER = "alice@example.net"
JORG = "jörg@müller.example"  # RFC 6531: UTF-8 in the local part and the domain


def the_case(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    [ref] = [c["ref"] for c in json.loads(capsys.readouterr().out)]
    assert mailbot("show", ref, "--json") == 0
    case: dict[str, Any] = json.loads(capsys.readouterr().out)
    return case


def headlines(mailbot: Mailbot, address: str, words: str) -> list[str]:
    """The first lines of the letters to ADDRESS that say WORDS (the case's subject is one)."""
    found = [e.text.splitlines()[1] for e in mailbot.staff_mail(address)]
    return [s for s in found if words in s]


def outbound(case: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in case["outbound"] if o["kind"] == kind]


def bounced_complaint(mailbot: Mailbot, tmp_path: Path, received: datetime = RECEIVED) -> str:
    """A complaint whose acknowledgement bounced permanently: the address is suppressed."""
    ingest(mailbot, tmp_path, complaint()[0], received)
    [ack] = mailbot.customer_mail()
    bounce = bounce_for(str(ack.message["Message-ID"]), CUSTOMER)
    ingest(mailbot, tmp_path, bounce, received + timedelta(minutes=5))
    return str(ack.message["Subject"]).split("]")[0].lstrip("[")


def test_a_second_deadlock_request_keeps_the_first_window_and_tells_staff_once(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = deadlock_case(mailbot, tmp_path, capsys, FRIDAY_4PM)
    for hours in (18, 42):  # Saturday, then Sunday: still no decision
        chase, _ = complaint(
            subject=f"Re: [{ref}] deadlock", body="Where is my deadlock letter? I asked already.\n"
        )
        ingest(mailbot, tmp_path, chase, FRIDAY_4PM + timedelta(hours=hours))
    case = the_case(mailbot, capsys)
    assert case["deadlock_requested_at"] == at(FRIDAY_4PM), "the window is not restarted"
    assert len([e for e in case["events"] if e["action"] == "deadlock letter chased"]) == 2
    [chased] = [
        e
        for e in mailbot.staff_mail(TEAM_LEADER)
        if "Customer chased the deadlock letter" in e.text
    ]
    assert "Monday 23 November 2026 at 16:00" in chased.text, "the decision time, unchanged"
    assert len(headlines(mailbot, TEAM_LEADER, "asks for a deadlock letter")) == 1
    tick(mailbot, MONDAY_4PM)
    assert the_case(mailbot, capsys)["deadlock_sent_at"] == at(MONDAY_4PM)


def test_an_adr_notice_to_a_bounced_address_is_held_and_the_managers_told(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = bounced_complaint(mailbot, tmp_path)
    eight_weeks = RECEIVED + timedelta(days=56)
    tick(mailbot, eight_weeks)
    case = the_case(mailbot, capsys)
    assert case["adr_notice_sent_at"] is None
    assert case["adr_notice_decision"].startswith("held back: the address bounced")
    [notice] = outbound(case, "adr_notice")
    assert notice["status"] == "held" and "bounced" in notice["last_error"]
    assert [e for e in case["events"] if e["action"] == "the ADR notice held back"]
    [told] = [e for e in mailbot.staff_mail(MANAGER) if "was not sent" in e.text]
    assert told.message["Subject"].startswith(f"[{ref}] ")  # the case's one subject
    assert f"On case {ref}, the ADR notice to the customer was not sent" in told.text
    assert "the address bounced" in told.text and "another way" in told.text
    assert len(mailbot.customer_mail()) == 1, "only the acknowledgement ever went"
    tick(mailbot, eight_weeks + timedelta(days=1, hours=6))  # decided once: not tried again
    assert len(outbound(the_case(mailbot, capsys), "adr_notice")) == 1
    assert len(headlines(mailbot, MANAGER, "was not sent")) == 1


def test_a_held_letter_is_never_recorded_as_sent(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = bounced_complaint(mailbot, tmp_path, FRIDAY_4PM - timedelta(days=4))
    request, _ = complaint(subject=f"Re: [{ref}] x", body="Please send me a deadlock letter.\n")
    ingest(mailbot, tmp_path, request, FRIDAY_4PM)
    tick(mailbot, MONDAY_4PM)
    case = the_case(mailbot, capsys)
    assert case["deadlock_sent_at"] is None
    assert "bounced" in case["deadlock_letter_held_back"]
    [letter] = outbound(case, "deadlock_letter")
    assert letter["status"] == "held" and letter["sent_at"] is None
    [listed] = [m for m in case["messages"] if m["kind"] == "deadlock_letter"]
    assert listed["status"] == "held"
    actions = [e["action"] for e in case["events"]]
    assert "the deadlock letter held back" in actions and "deadlock letter sent" not in actions
    assert len(headlines(mailbot, MANAGER, "the deadlock letter to the customer was not sent")) == 1
    for days in (1, 2):  # the rules decided it: no retry each tick, nor the managers again
        tick(mailbot, MONDAY_4PM + timedelta(days=days))
    assert len(outbound(the_case(mailbot, capsys), "deadlock_letter")) == 1
    assert len(headlines(mailbot, MANAGER, "was not sent")) == 1
    assert not [
        e for e in mailbot.customer_mail() if e.message["X-Mailbot-Kind"] != "acknowledgement"
    ]


def test_lifting_a_suppression_is_recorded(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = bounced_complaint(mailbot, tmp_path)
    reply, _ = staff_reply(TEAM_LEADER, "Alice, is this address right?", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, reply, RECEIVED + timedelta(days=1))
    engine = db.open_database(mailbot.db_url)
    try:
        with Session(engine) as session:
            row = session.get(Suppression, CUSTOMER)
            assert row is not None, "lifted, not deleted (R8)"
            assert row.lifted_at == RECEIVED + timedelta(days=1)
            assert row.lifted_by == TEAM_LEADER
    finally:
        engine.dispose()
    [lifted] = [
        e for e in the_case(mailbot, capsys)["events"] if e["action"] == "bounce suppression lifted"
    ]
    assert lifted["actor"] == TEAM_LEADER and CUSTOMER in lifted["detail"]


@pytest.fixture
def utf8_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(smtputf8=True)
    sink.start()
    yield sink
    sink.stop()


def test_non_ascii_address_goes_with_smtputf8(
    mailbot: Mailbot,
    dovecot: Dovecot,
    utf8_sink: SmtpSink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "utf8.toml"
    write_config(
        config,
        imap_port=dovecot.port,
        user=mailbot.user,
        smtp_port=utf8_sink.port,
        db=mailbot.db_url,
    )
    mailbot = Mailbot(config, mailbot.db_url, dovecot, utf8_sink, mailbot.user)
    ingest(mailbot, tmp_path, complaint(sender=f"Jörg Müller <{JORG}>")[0], RECEIVED)
    [ack] = mailbot.customer_mail()
    assert ack.rcpt_tos == [JORG] and ack.smtputf8
    assert JORG in str(ack.message["To"]) and "Jörg" in ack.text
    [row] = outbound(the_case(mailbot, capsys), "acknowledgement")
    assert row["status"] == "sent" and row["to"] == JORG


def test_non_ascii_address_is_held_without_smtputf8(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest(mailbot, tmp_path, complaint(sender=f"Jörg Müller <{JORG}>")[0], RECEIVED)
    assert mailbot.customer_mail() == []
    assert headlines(mailbot, TEAM_LEADER, "New complaint"), "the case stands"
    tick(mailbot, RECEIVED + timedelta(hours=2))
    case = the_case(mailbot, capsys)
    [ack] = outbound(case, "acknowledgement")
    assert ack["status"] == "held" and "does not offer SMTPUTF8" in ack["last_error"]
    assert ack["attempts"] == 1, "held back, not retried"
    eight_weeks = RECEIVED + timedelta(days=56)
    tick(mailbot, eight_weeks)  # queued as usual; the server cannot take it when it is sent
    case = the_case(mailbot, capsys)
    assert case["adr_notice_sent_at"] is None
    assert "SMTPUTF8" in case["adr_notice_decision"]
    assert outbound(case, "adr_notice")[0]["status"] == "held"
    [told] = [e for e in mailbot.staff_mail(MANAGER) if "was not sent" in e.text]
    assert "SMTPUTF8" in told.text
    tick(mailbot, eight_weeks + timedelta(days=1))
    assert len(headlines(mailbot, MANAGER, "was not sent")) == 1, "told once"
    assert mailbot.customer_mail() == []


def test_acknowledgement_waits_for_business_time_when_so_set(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = mailbot.config.read_text()
    mailbot.config.write_text(text + "\n[procedure]\nacknowledge_out_of_hours = false\n")
    friday_8pm = FRIDAY_4PM + timedelta(hours=4)
    monday_9am = MONDAY_4PM - timedelta(hours=7)
    ingest(mailbot, tmp_path, complaint()[0], friday_8pm)
    assert headlines(mailbot, TEAM_LEADER, "New complaint"), "staff hear at once"
    tick(mailbot, friday_8pm + timedelta(days=1))
    tick(mailbot, monday_9am - timedelta(minutes=1))
    assert mailbot.customer_mail() == []
    tick(mailbot, monday_9am)
    [ack] = mailbot.customer_mail()
    assert ack.message["X-Mailbot-Kind"] == "acknowledgement"
    assert ack.message["Date"] == "Mon, 23 Nov 2026 09:00:00 +0000", "dated when it goes"
    tick(mailbot, MONDAY_4PM)  # R3: the acknowledgement is Monday's word to the customer
    assert len(mailbot.customer_mail()) == 1
    assert the_case(mailbot, capsys)["next_update_due"] == at(MONDAY_4PM + timedelta(days=1))
