"""Defences on real servers: loops, caps, bounces, size limits, quarantine, give-up, logs."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlmodel import Session

from mailbot.app import build_app
from mailbot.config import load_settings
from mailbot.mail.compose import Letter
from mailbot.store.models import MessageKind
from sandbox import Envelope
from tests.conftest import PASSWORD, TEAM_LEADER, Mailbot, write_config
from tests.test_intake_e2e import complaint
from tests.test_staff_e2e import staff_reply

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def ingest(mailbot: Mailbot, tmp_path: Path, raw: bytes, now: datetime = NOW) -> int:
    path = tmp_path / f"{make_msgid()[1:-1]}.eml"
    path.write_bytes(raw)
    return mailbot("--now", now.isoformat(), "ingest", str(path))


def cases(mailbot: Mailbot, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    found: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return found


def with_alerts(mailbot: Mailbot, extra: str = "") -> None:
    mailbot.config.write_text(
        mailbot.config.read_text() + f'\n[alerts]\nto = ["ops@provider.example"]\n{extra}'
    )


def test_a_naive_autoresponder_answering_everything_stops_after_one_round(
    mailbot: Mailbot,
) -> None:
    """A robot with no RFC 3834 headers replies to every mail we send, into our mailbox."""

    def answer(envelope: Envelope) -> None:
        sent = envelope.message
        reply = (
            f"From: {envelope.rcpt_tos[0]}\r\nTo: complaints@provider.example\r\n"
            f"Subject: Re: {sent['Subject']}\r\nMessage-ID: {make_msgid(domain='robot.example')}"
            f"\r\nIn-Reply-To: {sent['Message-ID']}\r\n\r\nThank you for your email. "
            "We will get back to you as soon as possible.\r\n"
        ).encode()
        with IMAPClient("127.0.0.1", port=mailbot.dovecot.port, ssl=False) as client:
            client.login(mailbot.user, PASSWORD)
            client.append("INBOX", reply)

    responder = mailbot.smtp.handler
    original = type(responder).handle_DATA

    async def handle_data(self: Any, server: Any, session: Any, envelope: Any) -> str:
        answer_to = Envelope(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        result = await original(self, server, session, envelope)
        threading.Thread(target=answer, args=(answer_to,)).start()
        return result

    type(responder).handle_DATA = handle_data  # type: ignore[method-assign]
    try:
        mailbot.append(complaint(sender="Robot Owner <robot@robot.example>")[0])
        for _ in range(6):
            assert mailbot("run", "--once") == 0
            threading.Event().wait(0.3)
    finally:
        type(responder).handle_DATA = original  # type: ignore[method-assign]
    to_robot = [e for e in mailbot.smtp.received if e.rcpt_tos == ["robot@robot.example"]]
    assert len(to_robot) == 1, "the acknowledgement, then silence"


def test_automated_replies_to_one_address_are_capped_and_admins_told_once(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # (over the flood limit the rest would thread onto a case: this is about the cap alone)
    limits = "auto_replies_per_address_per_day = 3\nnew_cases_per_sender_per_day = 10\n"
    with_alerts(mailbot, f"[limits]\n{limits}")
    for n in range(6):
        raw, _ = complaint(subject=f"Complaint number {n}", sender="Flood <flood@example.net>")
        assert ingest(mailbot, tmp_path, raw, NOW + timedelta(minutes=n)) == 0
    acknowledgements = [e for e in mailbot.customer_mail() if e.rcpt_tos == ["flood@example.net"]]
    assert len(acknowledgements) == 3
    alerts = mailbot.staff_mail("ops@provider.example")
    assert len(alerts) == 1 and "capped" in alerts[0].message["Subject"]
    assert len(cases(mailbot, capsys)) == 6, "every complaint is still recorded"
    assert (
        ingest(
            mailbot,
            tmp_path,
            complaint(sender="Flood <flood@example.net>")[0],
            NOW + timedelta(days=1, minutes=10),
        )
        == 0
    )
    assert len([e for e in mailbot.customer_mail() if e.rcpt_tos == ["flood@example.net"]]) == 4


def bounce_for(message_id: str, address: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: complaints@provider.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.example.net')}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net"
        f"\r\n\r\nFinal-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nSubject: whatever\r\n--b--\r\n"
    ).encode()


def test_a_permanent_bounce_is_recorded_and_stops_automated_mail_until_staff_write(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ingest(mailbot, tmp_path, complaint()[0]) == 0
    [ack] = mailbot.customer_mail()
    assert (
        ingest(mailbot, tmp_path, bounce_for(str(ack.message["Message-ID"]), "alice@example.net"))
        == 0
    )
    [case] = cases(mailbot, capsys)
    bounce = [m for m in case["messages"] if m["kind"] == "bounce"]
    assert len(bounce) == 1
    [event] = [e for e in case["events"] if e["action"] == "bounce"]
    assert "alice@example.net 5.1.1 permanent" in event["detail"]
    assert any("bounced" in e.text for e in mailbot.staff_mail(TEAM_LEADER))
    for hours in (7, 8):  # the second tick must not try again that day
        assert mailbot("--now", (NOW + timedelta(days=1, hours=hours)).isoformat(), "tick") == 0
    assert len(mailbot.customer_mail()) == 1, "no update to a dead address"
    [case] = cases(mailbot, capsys)
    held = [e for e in case["events"] if e["action"] == "not sent update"]
    assert len(held) == 1 and "bounced" in held[0]["detail"]
    reply, _ = staff_reply(
        TEAM_LEADER, "Alice, please check your address.", f"RE: [{case['ref']}] x"
    )
    assert ingest(mailbot, tmp_path, reply, NOW + timedelta(days=2)) == 0
    assert [e.message["X-Mailbot-Kind"] for e in mailbot.customer_mail()][-1] == "staff_reply"
    assert mailbot("--now", (NOW + timedelta(days=3, hours=7)).isoformat(), "tick") == 0
    assert [e.message["X-Mailbot-Kind"] for e in mailbot.customer_mail()][-1] == "update"


def test_a_message_over_the_size_limit_is_kept_quarantined_and_the_sender_told(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mailbot.config.write_text(mailbot.config.read_text() + "\n[limits]\nmax_message_bytes = 4096\n")
    raw, _ = complaint(body="A very long complaint.\n" + "x" * 8000 + "\n")
    mailbot.append(raw)
    assert mailbot("run", "--once") == 0
    assert mailbot.folder_count("mailbot/quarantine") == 1
    [told] = mailbot.customer_mail()
    assert told.message["X-Mailbot-Kind"] == "too_large" and "too large" in told.text
    capsys.readouterr()
    assert mailbot("quarantine", "list") == 0
    listing = capsys.readouterr().out
    assert "too large" in listing
    quarantined_id = listing.split()[0]
    assert mailbot("quarantine", "show", quarantined_id, "--raw") == 0
    assert capsys.readouterr().out.encode() == raw

    mailbot.config.write_text(mailbot.config.read_text().replace("4096", "1048576"))
    assert mailbot("quarantine", "retry", quarantined_id) == 0
    assert len(cases(mailbot, capsys)) == 1
    capsys.readouterr()
    assert mailbot("quarantine", "list") == 0
    assert capsys.readouterr().out == ""
    # the mailbox agrees: its copy is out of the quarantine folder, with the processed mail
    assert mailbot.folder_count("mailbot/quarantine") == 0
    assert mailbot.folder_count("mailbot/processed") == 1


def test_mail_refused_past_give_up_after_is_failed_and_admins_told_once(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_alerts(mailbot)

    def greylisted(stage: str, letter: Envelope) -> str | None:  # all but the admins' mail
        refused = stage == "RCPT" and "ops@provider.example" not in letter.rcpt_tos
        return "451 4.7.1 greylisted" if refused else None

    mailbot.smtp.handler.answer = greylisted
    assert ingest(mailbot, tmp_path, complaint()[0]) == 0
    for hours in (1, 12, 30, 47):
        assert mailbot("--now", (NOW + timedelta(hours=hours)).isoformat(), "tick") == 0
    [case] = cases(mailbot, capsys)
    assert {o["kind"]: o["status"] for o in case["outbound"]}["acknowledgement"] == "queued"
    assert mailbot("--now", (NOW + timedelta(hours=49)).isoformat(), "tick") == 0
    [case] = cases(mailbot, capsys)
    [ack] = [o for o in case["outbound"] if o["kind"] == "acknowledgement"]
    assert ack["status"] == "failed" and ack["last_error"].startswith("gave up after 2d")
    alerts = mailbot.staff_mail("ops@provider.example")
    subjects = [str(a.message["Subject"]) for a in alerts]
    # the acknowledgement and the team leader's notification were both refused
    assert sorted(subjects) == [
        "mailbot: gave up sending acknowledgement to alice@example.net",
        f"mailbot: gave up sending staff_notification to {TEAM_LEADER}",
    ]
    assert mailbot("--now", (NOW + timedelta(hours=50)).isoformat(), "tick") == 0
    assert len(mailbot.staff_mail("ops@provider.example")) == len(alerts), "told once"


def test_json_logs_give_one_object_per_line(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.eml"
    path.write_bytes(complaint()[0])
    capsys.readouterr()
    assert mailbot("--log-format", "json", "ingest", str(path)) == 0
    err = capsys.readouterr().err.splitlines()
    # other threads' warnings (a socket closed late, say) may share stderr; ours are all JSON
    assert [line for line in err if "mailbot" in line and not line.startswith("{")] == []
    lines = [json.loads(line) for line in err if line.startswith("{")]
    [received] = [entry for entry in lines if "kind=complaint" in entry["message"]]
    assert received["level"] == "INFO" and "case=CMP-2026-000001 (new)" in received["message"]
    assert any(entry["message"].startswith("sent acknowledgement") for entry in lines)


def test_the_cap_counts_letters_not_yet_flushed_in_the_same_transaction(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    write_config(config, imap_port=1, user="cap", smtp_port=1, db=tmp_path / "mailbot.db")
    environ = {"MAILBOT_LIMITS_AUTO_REPLIES_PER_ADDRESS_PER_DAY": "2"}
    app = build_app(load_settings(config, environ=environ), clock=lambda: NOW)
    try:
        outbox = app.outbox
        letter = Letter("flood@example.net", "", "Your complaint", "We have it.")
        with Session(app.engine) as session:
            kind = MessageKind.ACKNOWLEDGEMENT
            queued = [outbox.queue(session, None, kind, letter) for _ in range(3)]
            assert [row.status for row in queued] == ["queued", "queued", "held"]
            assert "the cap is 2" in queued[2].last_error
    finally:
        app.close()
