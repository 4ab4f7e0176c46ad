"""UK GDPR: subject access (`mailbot export`), erasure (`erase`) and retention (`purge`)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from mailbot.store import db
from mailbot.store.models import Attachment, Case, Event, Inbound, InboundRaw, Outbound
from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_procedure_e2e import ingest
from tests.test_staff_e2e import staff_reply

ALICE = "alice@example.net"
RECEIVED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
RESOLVED = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
PERSONAL = ("alice", "Alice", "07700 900123", "12345678", "bill-november.pdf", "Line repaired")


def complaint_with_a_bill(sender: str = f"Alice Customer <{ALICE}>") -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "complaints@provider.example"
    mail["Subject"] = "My broadband keeps dropping"
    mail["Message-ID"] = make_msgid(domain="example.net")
    mail["Date"] = "Mon, 02 Nov 2026 09:59:00 +0000"
    mail.set_content(
        "My fibre broadband on account 12345678 drops every evening.\n"
        "Please call me on 07700 900123.\n\nAlice\n"
    )
    mail.add_attachment(b"%PDF-1.4 a bill", "application", "pdf", filename="bill-november.pdf")
    return mail.as_bytes()


def resolved_case(mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Alice's complaint with her bill attached, answered, resolved: its reference."""
    ingest(mailbot, tmp_path, complaint_with_a_bill(), RECEIVED)
    ref: str = show_all(mailbot, capsys)[0]["ref"]
    reply, _ = staff_reply(TEAM_LEADER, "We are testing your line.", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, reply, datetime(2026, 11, 2, 14, 0, tzinfo=UTC))
    done, _ = staff_reply(TEAM_LEADER, "#resolve Line repaired, Alice credited", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, done, RESOLVED)
    return ref


def show_all(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    found: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return found


def show(mailbot: Mailbot, capsys: pytest.CaptureFixture[str], ref: str) -> str:
    capsys.readouterr()
    assert mailbot("show", ref, "--json") == 0
    out: str = capsys.readouterr().out
    return out


def refused(mailbot: Mailbot, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line a refused command prints (exit 2)."""
    capsys.readouterr()
    assert mailbot(*args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mailbot:")]
    assert len(lines) == 1
    return lines[0]


def test_a_subject_access_export_holds_every_message_the_case_and_its_events(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = resolved_case(mailbot, tmp_path, capsys)
    out = tmp_path / "sar"
    assert (
        mailbot(
            "--now",
            "2026-12-01T10:00:00+00:00",
            "export",
            "--customer",
            ALICE,
            "--output",
            str(out),
        )
        == 0
    )
    case_dir = out / ref
    assert json.loads((case_dir / "case.json").read_text()) == json.loads(
        show(mailbot, capsys, ref)
    )
    shown = json.loads(show(mailbot, capsys, ref))
    assert json.loads((case_dir / "events.json").read_text()) == shown["events"]
    emls = sorted(p.name for p in (case_dir / "messages").iterdir())
    engine = db.open_database(mailbot.db_url)
    with Session(engine) as session:
        case = session.exec(select(Case).where(Case.ref == ref)).one()
        inbound = session.exec(select(Inbound).where(Inbound.case_id == case.id)).all()
        inbound_raw = {db.raw_bytes(session, m.id) for m in inbound}
        outbound = session.exec(select(Outbound).where(Outbound.case_id == case.id)).all()
    engine.dispose()
    assert len([n for n in emls if "-in-" in n]) == len(inbound) == 3  # complaint, 2 replies
    assert len([n for n in emls if "-out-" in n]) == len(outbound)
    assert emls[0] == "001-in-complaint.eml"
    first = message_from_bytes((case_dir / "messages" / emls[0]).read_bytes())
    assert [p.get_filename() for p in first.walk() if p.get_filename()] == ["bill-november.pdf"]
    assert inbound_raw | {m.raw for m in outbound} == {
        (case_dir / "messages" / name).read_bytes() for name in emls
    }
    readme = (out / "README.txt").read_text()
    assert "case.json" in readme and "events.json" in readme and ".eml" in readme
    assert f"{ref}: received 2026-11-02, resolved" in readme


def test_an_export_refuses_a_directory_that_is_not_empty(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resolved_case(mailbot, tmp_path, capsys)
    out = tmp_path / "full"
    out.mkdir()
    (out / "something.txt").write_text("kept")
    line = refused(mailbot, capsys, "export", "--customer", ALICE, "--output", str(out))
    assert line == f"mailbot: {out} is not an empty directory: give a new or empty one"
    assert sorted(p.name for p in out.iterdir()) == ["something.txt"]


def test_erasure_leaves_the_case_s_reference_dates_timers_and_outcome_and_nothing_personal(
    mailbot: Mailbot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = resolved_case(mailbot, tmp_path, capsys)
    before = json.loads(show(mailbot, capsys, ref))
    assert all(word in json.dumps(before) for word in PERSONAL[:3])
    thirteen_months_on = "2027-12-05T10:00:00+00:00"
    with caplog.at_level(logging.INFO, logger="mailbot"):
        assert mailbot("--now", thirteen_months_on, "erase", "--customer", ALICE) == 0
    assert f"erase: {ref}: personal data erased: 3 message(s) received" in caplog.text

    after = json.loads(show(mailbot, capsys, ref))
    kept = (
        "ref",
        "status",
        "level",
        "received_at",
        "first_response_due",
        "adr_date",
        "resolved_at",
        "first_staff_reply_at",
        "adr_notice_due",
        "details_found",
    )
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    text = json.dumps(after)
    for word in PERSONAL:
        assert word not in text, word
    assert after["customer_email"] == "" and after["customer_name"] == ""
    assert [e["action"] for e in after["events"]][:-1] == [e["action"] for e in before["events"]]
    assert after["events"][-1] == {
        "at": thirteen_months_on,
        "actor": "admin",
        "action": "personal data erased",
        "detail": "mailbot erase --customer",
    }
    engine = db.open_database(mailbot.db_url)
    with Session(engine) as session:
        case = session.exec(select(Case).where(Case.ref == ref)).one()
        assert case.personal_data_erased_at == datetime.fromisoformat(thirteen_months_on)
        assert {m.raw for m in session.exec(select(InboundRaw))} == {b""}
        assert {m.raw for m in session.exec(select(Outbound))} == {b""}
        assert session.exec(select(Attachment)).all() == []
        actors = {e.actor for e in session.exec(select(Event))}
        assert ALICE not in actors and "customer" in actors and TEAM_LEADER in actors
    engine.dispose()
    # nothing left to find: the customer is no longer known
    line = refused(mailbot, capsys, "erase", "--customer", ALICE)
    assert line == f"mailbot: no case of {ALICE}"


def test_erasure_is_refused_while_a_case_is_open_or_within_the_hold(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = resolved_case(mailbot, tmp_path, capsys)
    line = refused(
        mailbot, capsys, "--now", "2027-11-03T10:00:00+00:00", "erase", "--customer", ALICE
    )
    assert line == (
        f"mailbot: not erased: {ref} is held until 2027-11-04 ([retention] hold_months = 12 "
        "after its resolution on 2026-11-04)"
    )
    raw = complaint_with_a_bill(sender=f"Alice <{ALICE}>").replace(b"broadband", b"phone")
    ingest(
        mailbot,
        tmp_path,
        raw.replace(b"Message-ID: <", b"Message-ID: <2"),
        datetime(2027, 12, 1, 10, 0, tzinfo=UTC),
    )
    second = show_all(mailbot, capsys)[-1]["ref"]
    line = refused(
        mailbot, capsys, "--now", "2027-12-05T10:00:00+00:00", "erase", "--customer", ALICE
    )
    assert line == f"mailbot: not erased: {second} is open"
    assert "07700 900123" in show(mailbot, capsys, ref)


def test_a_dry_run_says_what_it_would_erase_and_erases_nothing(
    mailbot: Mailbot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = resolved_case(mailbot, tmp_path, capsys)
    before = show(mailbot, capsys, ref)
    with caplog.at_level(logging.INFO, logger="mailbot"):
        assert (
            mailbot("--now", "2028-01-01T10:00:00+00:00", "erase", "--customer", ALICE, "--dry-run")
            == 0
        )
        assert (
            mailbot(
                "--now",
                "2028-01-01T10:00:00+00:00",
                "purge",
                "--closed-before",
                "2027-01-01",
                "--dry-run",
            )
            == 0
        )
    assert f"erase --dry-run: {ref}: would erase 3 message(s) received" in caplog.text
    assert f"purge --dry-run: {ref}: would erase 3 message(s) received" in caplog.text
    assert show(mailbot, capsys, ref) == before


def test_purge_erases_the_cases_closed_before_the_date_and_outside_the_hold_only(
    mailbot: Mailbot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = resolved_case(mailbot, tmp_path, capsys)
    bob = complaint_with_a_bill(sender="Bob <bob@example.net>")
    ingest(mailbot, tmp_path, bob, datetime(2027, 6, 1, 10, 0, tzinfo=UTC))
    recent = show_all(mailbot, capsys)[-1]["ref"]
    done, _ = staff_reply(TEAM_LEADER, "#resolve Sorted", f"RE: [{recent}] x")
    ingest(mailbot, tmp_path, done, datetime(2027, 6, 2, 10, 0, tzinfo=UTC))
    carol = complaint_with_a_bill(sender="Carol <carol@example.net>")
    ingest(mailbot, tmp_path, carol, datetime(2027, 6, 3, 10, 0, tzinfo=UTC))
    still_open = show_all(mailbot, capsys)[-1]["ref"]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mailbot"):
        assert (
            mailbot("--now", "2028-01-10T10:00:00+00:00", "purge", "--closed-before", "2028-01-01")
            == 0
        )
    assert f"purge: {old}: personal data erased" in caplog.text
    assert f"purge: {recent}: kept: is held until 2028-06-02" in caplog.text
    assert still_open not in caplog.text  # open: not closed before the date
    assert "purge: erased the personal data of 1 case(s)" in caplog.text
    assert "07700 900123" not in show(mailbot, capsys, old)
    assert "07700 900123" in show(mailbot, capsys, recent)
    assert "07700 900123" in show(mailbot, capsys, still_open)
