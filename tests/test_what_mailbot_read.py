"""What mailbot read, visible: `show --json` and `quarantine list --json` through the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from mailbot.store.models import Disposition, Inbound
from mailbot.views import quarantined_json
from tests.conftest import Mailbot

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PDF, PNG = b"%PDF-1.4 refund form", b"\x89PNG\r\n\x1a\n router photo"


def ingest(mailbot: Mailbot, tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / f"{make_msgid()[1:-1]}.eml"
    path.write_bytes(raw)
    assert mailbot("--now", NOW.isoformat(), "ingest", str(path)) == 0


def printed_json(mailbot: Mailbot, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert mailbot(*args) == 0
    return json.loads(capsys.readouterr().out)


def base64_of(data: bytes) -> str:
    return base64.encodebytes(data).decode()


def html_complaint_with_files() -> bytes:
    return (
        "From: =?utf-8?q?Ann_M=C3=BCller?= <ann@example.com>\r\nTo: complaints@provider.example\r\n"
        f"Subject: Broken router\r\nMessage-ID: {make_msgid(domain='example.com')}\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        "--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>My <b>Caf&eacute;</b> router has been dead since Monday.</p>"
        '<p>Account 12345678, <a href="tel:07700900123">call me</a>.</p>\r\n'
        "--XX\r\nContent-Type: image/png\r\nContent-ID: <image001.png@01DA1B2C.3D4E5F60>\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64_of(PNG)}"
        "--XX\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="form.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64_of(PDF)}--XX--\r\n"
    ).encode()


def test_show_json_gives_each_message_its_sender_text_attachments_and_kind(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest(mailbot, tmp_path, html_complaint_with_files())
    [case] = printed_json(mailbot, capsys, "cases", "--json")
    shown = printed_json(mailbot, capsys, "show", case["ref"], "--json")
    [received] = [m for m in shown["messages"] if m["direction"] == "in"]
    assert received["kind"] == "complaint"
    assert received["from"] == {"address": "ann@example.com", "name": "Ann Müller"}
    assert received["text"] == (
        "My Café router has been dead since Monday.\n\nAccount 12345678, call me (tel:07700900123)."
    )
    assert received["attachments"] == [
        {
            "filename": "image001.png",
            "content_type": "image/png",
            "size": len(PNG),
            "sha256": hashlib.sha256(PNG).hexdigest(),
        },
        {
            "filename": "form.pdf",
            "content_type": "application/pdf",
            "size": len(PDF),
            "sha256": hashlib.sha256(PDF).hexdigest(),
        },
    ]


def test_quarantine_list_json_gives_each_set_aside_message_its_sender_subject_and_reason(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mailbot.config.write_text(mailbot.config.read_text() + "\n[limits]\nmax_message_bytes = 4096\n")
    too_large = (
        "From: Ann Customer <ann@example.com>\r\nSubject: My long story\r\n"
        f"Message-ID: {make_msgid(domain='example.com')}\r\n\r\n" + "x" * 8000 + "\r\n"
    ).encode()
    nobody = b"Subject: who am I\r\nMessage-ID: <anon@example.net>\r\n\r\nNo From at all.\r\n"
    ingest(mailbot, tmp_path, too_large)
    ingest(mailbot, tmp_path, nobody)
    listed = printed_json(mailbot, capsys, "quarantine", "list", "--json")
    assert [(m["sender"], m["subject"]) for m in listed] == [
        ({"address": "ann@example.com", "name": "Ann Customer"}, "My long story"),
        (None, "who am I"),
    ]
    assert listed[0]["reason"].startswith("too large: ")
    assert listed[1]["reason"] == "no sender address"
    assert all(isinstance(m["id"], int) for m in listed)
    assert printed_json(mailbot, capsys, "quarantine", "list", "--json") == listed


def test_a_message_whose_processing_failed_is_listed_with_the_sender_its_headers_name() -> None:
    # a failed transaction records nothing of what was read: only the raw bytes are left
    raw = b"From: Bob <bob@example.org>\r\nSubject: =?utf-8?q?Beschwerde_M=C3=BCll?=\r\n\r\nhi\r\n"
    row = Inbound(
        id=7,
        message_id="<x@example.org>",
        sha256=hashlib.sha256(raw).hexdigest(),
        content_sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=NOW,
        source="file x.eml",
        disposition=Disposition.QUARANTINED,
        reason="processing failed: RuntimeError: boom",
    )
    listed = quarantined_json(row, lambda: raw)
    assert listed["sender"] == {"address": "bob@example.org", "name": "Bob"}
    assert listed["subject"] == "Beschwerde Müll"
    assert listed["reason"] == "processing failed: RuntimeError: boom"
