"""Intake end to end: Dovecot -> mailbot run --once -> SQLite -> aiosmtpd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, create_engine, select

from mailbot.store.models import Inbound
from sandbox import free_port
from tests.conftest import Mailbot

FRIDAY_4PM = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # GMT in November: 16:00 London


def complaint(
    subject: str = "My broadband keeps dropping",
    sender: str = "Alice Customer <alice@example.net>",
    message_id: str | None = None,
    extra_headers: str = "",
    body: str = (
        "Hello,\n\nMy fibre broadband on account 12345678 has dropped every evening this week,\n"
        "and nobody has called me back. Please call me on 07700 900123.\n\nRegards,\nAlice\n"
    ),
) -> tuple[bytes, str]:
    message_id = message_id or make_msgid(domain="example.net")
    raw = (
        f"From: {sender}\r\nTo: complaints@provider.example\r\nSubject: {subject}\r\n"
        f"Date: Fri, 20 Nov 2026 15:59:00 +0000\r\nMessage-ID: {message_id}\r\n{extra_headers}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + body.replace("\n", "\r\n")
    )
    return raw.encode(), message_id


def show(mailbot: Mailbot, ref: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert mailbot("show", ref, "--json") == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def cases(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    data: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return data


def acknowledgements(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in case["outbound"] if o["kind"] == "acknowledgement"]


def test_complaint_in_the_mailbox_is_acknowledged_once(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, message_id = complaint()
    mailbot.append(raw, FRIDAY_4PM)

    assert mailbot("run", "--once") == 0

    assert len(mailbot.customer_mail()) == 1
    ack = mailbot.customer_mail()[0]
    assert ack.rcpt_tos == ["alice@example.net"]
    assert ack.message["In-Reply-To"] == message_id
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert ack.message["X-Auto-Response-Suppress"] == "All"
    [case] = cases(mailbot, capsys)
    assert f"[{case['ref']}]" in ack.message["Subject"]
    assert case["ref"] == "CMP-2026-000001"
    assert case["received_at"] == "2026-11-20T16:00:00+00:00"
    assert case["first_response_due"] == "2026-11-23T16:00:00+00:00"
    assert case["level"] == "team_leader" and case["status"] == "open"
    assert case["missing_details"] == []
    body = ack.text
    assert "Monday 23 November 2026 at 16:00" in body
    assert "Ombudsman Services" in body
    assert mailbot.folder_count("INBOX") == 0
    assert mailbot.folder_count("mailbot/processed") == 1

    assert mailbot("run", "--once") == 0
    assert len(mailbot.customer_mail()) == 1, "a second run must send nothing new"


def test_replies_by_reference_and_by_in_reply_to_land_on_the_same_case(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0
    ack = mailbot.customer_mail()[0].message
    [case] = cases(mailbot, capsys)
    ref = str(case["ref"])

    by_subject, by_subject_id = complaint(subject=f"Re: [{ref}] more detail")
    by_header, by_header_id = complaint(
        subject="Re: your message", extra_headers=f"In-Reply-To: {ack['Message-ID']}\r\n"
    )
    mailbot.append(by_subject)
    mailbot.append(by_header)
    assert mailbot("run", "--once") == 0

    assert len(mailbot.customer_mail()) == 1, "replies get no second acknowledgement"
    assert len(cases(mailbot, capsys)) == 1
    messages = show(mailbot, ref, capsys)["messages"]
    assert isinstance(messages, list)
    kinds = {m["message_id"]: m["kind"] for m in messages}
    assert kinds[by_subject_id] == "customer_reply"
    assert kinds[by_header_id] == "customer_reply"
    assert kinds[str(ack["Message-ID"])] == "acknowledgement"


def test_auto_reply_to_our_acknowledgement_is_recorded_and_not_answered(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0
    ack = mailbot.customer_mail()[0].message
    ooo, ooo_id = complaint(
        subject="Automatic reply: out of office",
        extra_headers=f"Auto-Submitted: auto-replied\r\nIn-Reply-To: {ack['Message-ID']}\r\n",
    )
    mailbot.append(ooo)
    assert mailbot("run", "--once") == 0
    assert len(mailbot.customer_mail()) == 1
    [case] = cases(mailbot, capsys)
    kinds = {m["message_id"]: m["kind"] for m in case["messages"]}
    assert kinds[ooo_id] == "auto_reply"


def test_same_message_id_with_other_content_is_a_new_message(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    first, message_id = complaint()
    second, _ = complaint(subject="A different complaint", message_id=message_id)
    mailbot.append(first)
    mailbot.append(first)  # the very same message delivered twice
    mailbot.append(second)
    assert mailbot("run", "--once") == 0
    assert len(cases(mailbot, capsys)) == 2
    assert len(mailbot.customer_mail()) == 2
    assert mailbot.folder_count("INBOX") == 0


def test_one_message_delivered_twice_by_other_routes_is_one_case(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, message_id = complaint()
    head, _, body = raw.partition(b"\r\n\r\n")
    # the same message again, as a second route (an alias, a copy) delivers it: only what the
    # servers on the way wrote differs, and the header is folded another way
    again = (
        b"Return-Path: <alice@example.net>\r\nDelivered-To: help@provider.example\r\n"
        b"X-Original-To: help@provider.example\r\n"
        b"Received: from mx2.provider.example by imap.provider.example;\r\n"
        b"\tFri, 20 Nov 2026 16:00:07 +0000\r\n"
        b"Authentication-Results: mx2.provider.example; dmarc=pass header.from=example.net\r\n"
        b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=provider.example; s=arc; b=AAAA\r\n"
        b"X-MS-Exchange-Organization-Network-Message-Id: 1f0c\r\n"
        + head.replace(b"Subject: ", b"Subject:\r\n  ")
        + b"\r\n\r\n"
        + body
    )
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0
    mailbot.append(again, FRIDAY_4PM)  # a later fetch, not the same batch
    assert mailbot("run", "--once") == 0

    assert len(cases(mailbot, capsys)) == 1
    assert len(mailbot.customer_mail()) == 1, "one acknowledgement"
    assert mailbot.folder_count("INBOX") == 0
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        assert [r.message_id for r in session.exec(select(Inbound))] == [message_id]
    engine.dispose()


def test_killed_between_commit_and_send_acknowledges_once(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    command = [sys.executable, "-m", "mailbot", "--config", str(mailbot.config), "run", "--once"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=os.environ.copy())
    # the case and its acknowledgement are committed before mailbot talks SMTP: kill it there
    mailbot.smtp.handler.on_mail = lambda: process.send_signal(signal.SIGKILL)
    mailbot.smtp.handler.refuse_with = "421 4.3.0 going away"
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert mailbot.customer_mail() == []
    [case] = cases(mailbot, capsys)
    assert [o["status"] for o in acknowledgements(case)] == ["queued"]

    mailbot.smtp.handler.on_mail = None
    mailbot.smtp.handler.refuse_with = None
    assert mailbot("run", "--once") == 0
    assert mailbot("run", "--once") == 0
    assert len(mailbot.customer_mail()) == 1


def test_unreachable_smtp_keeps_the_acknowledgement_queued_and_exits_tempfail(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    mailbot.smtp.stop()
    assert mailbot("run", "--once") == 75
    [case] = cases(mailbot, capsys)
    assert [o["status"] for o in acknowledgements(case)] == ["queued"]
    assert mailbot.folder_count("mailbot/processed") == 1


def test_permanent_refusal_marks_the_acknowledgement_failed_with_the_answer(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    mailbot.smtp.handler.refuse_with = "550 5.7.1 sender rejected"
    assert mailbot("run", "--once") == 0
    [case] = cases(mailbot, capsys)
    outbound = acknowledgements(case)
    assert [o["status"] for o in outbound] == ["failed"]
    assert "550 5.7.1 sender rejected" in outbound[0]["last_error"]


def test_ingest_uses_now_as_receipt_time(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    path = tmp_path / "complaint.eml"
    path.write_bytes(raw)
    assert mailbot("--now", "2026-11-20T20:00:00+00:00", "ingest", str(path)) == 0
    [case] = cases(mailbot, capsys)
    assert case["received_at"] == "2026-11-20T20:00:00+00:00"
    assert case["first_response_due"] == "2026-11-23T17:30:00+00:00"
    assert len(mailbot.customer_mail()) == 1


def test_a_wrong_setting_stops_start_up_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[mailbox]\nhost = "x"\nusername = "u"\npassword = "p"\nport = "993"\n'
        '[smtp]\nhost = "x"\nfrom_address = "c@x.example"\n'
    )
    from mailbot.cli import main

    assert main(["--config", str(config), "cases"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "mailbot: configuration error: mailbox.port: must be an integer, not '993' (in config.toml)"
    )


def test_a_message_without_a_sender_is_quarantined_and_the_mailbox_goes_on(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    nameless = b"To: complaints@provider.example\r\nSubject: who am I\r\n\r\nno From header\r\n"
    raw, _ = complaint()
    mailbot.append(nameless)
    mailbot.append(raw)
    assert mailbot("run", "--once") == 0
    assert mailbot.folder_count("mailbot/quarantine") == 1
    assert mailbot.folder_count("mailbot/processed") == 1
    assert mailbot.folder_count("INBOX") == 0
    assert len(cases(mailbot, capsys)) == 1
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        [quarantined] = session.exec(select(Inbound).where(Inbound.subject == "who am I")).all()
    assert (quarantined.disposition, quarantined.reason) == ("quarantined", "no sender address")


def test_a_temporary_refusal_is_retried_later_and_sent_once(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    mailbot.smtp.handler.refuse_with = "451 4.3.0 try again later"
    assert mailbot("--now", "2026-11-20T16:00:30+00:00", "run", "--once") == 0
    [case] = cases(mailbot, capsys)
    [outbound] = acknowledgements(case)
    assert (outbound["status"], outbound["attempts"]) == ("queued", 1)
    assert "451 4.3.0" in outbound["last_error"]

    mailbot.smtp.handler.refuse_with = None
    assert mailbot("--now", "2026-11-20T16:00:40+00:00", "run", "--once") == 0
    assert mailbot.customer_mail() == [], "not before the back-off has passed"
    assert mailbot("--now", "2026-11-20T16:02:00+00:00", "run", "--once") == 0
    assert len(mailbot.customer_mail()) == 1
    [case] = cases(mailbot, capsys)
    assert acknowledgements(case)[0]["status"] == "sent"
    assert acknowledgements(case)[0]["smtp_reply"].startswith("250")


def test_unreachable_imap_exits_tempfail(mailbot: Mailbot, tmp_path: Path) -> None:

    text = mailbot.config.read_text().replace(
        f"port = {mailbot.dovecot.port}", f"port = {free_port()}"
    )
    mailbot.config.write_text(text)
    assert mailbot("run", "--once") == 75


def test_check_says_what_works(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> None:
    assert mailbot("check") == 0
    out = capsys.readouterr().out
    assert "IMAP ok" in out and "SMTP ok" in out
    mailbot.smtp.stop()
    assert mailbot("check") == 75
    assert "SMTP FAILED" in capsys.readouterr().out


def test_changed_uidvalidity_rescans_without_answering_twice(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = complaint()
    mailbot.append(raw, FRIDAY_4PM)
    assert mailbot("run", "--once") == 0
    # the mailbox was rebuilt: the same message is back, under a UIDVALIDITY we never saw
    mailbot.append(raw, FRIDAY_4PM)
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        session.execute(text("UPDATE checkpoint SET uidvalidity = 1, last_uid = 999"))
        session.commit()
    assert mailbot("run", "--once") == 0
    assert len(mailbot.customer_mail()) == 1
    assert mailbot.folder_count("INBOX") == 0
    assert len(cases(mailbot, capsys)) == 1
