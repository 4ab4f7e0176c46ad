"""`mailbot casefile`: one case's file for the ombudsman: a page, its messages, a manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from mailbot.mail.parse import parse_message
from mailbot.privacy import Refusal, raw_messages, refuse_unless_empty, write_file
from mailbot.store import db
from mailbot.store.casebook import case_events, case_letters, case_messages
from mailbot.store.db import Session
from mailbot.store.models import Case

MANIFEST = "MANIFEST.sha256"

STYLE = """
body { font: 11pt/1.45 Georgia, "Times New Roman", serif; max-width: 50em; margin: 2em auto;
  padding: 0 1em; color: #111; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em;
  border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { text-align: left; vertical-align: top; padding: 0.2em 0.5em 0.2em 0;
  border-bottom: 1px solid #ddd; overflow-wrap: anywhere; }
.summary th { width: 14em; } .decisions { font-size: 0.92em; }
.decisions .when { width: 8.5em; } .decisions .what { width: 11em; }
.decisions .who { width: 11em; }
.entry { margin: 1em 0; padding: 0.5em 0.8em; border-left: 3px solid #999; break-inside: avoid; }
.entry.in { border-color: #2a6; } .entry.out { border-color: #26a; }
.entry.event { border-color: #bbb; padding-top: 0.2em; padding-bottom: 0.2em; }
.meta { font: 9.5pt/1.3 Helvetica, Arial, sans-serif; color: #444; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; font: 10pt/1.35 "DejaVu Sans Mono",
  monospace; margin: 0.4em 0 0; }
.erased { padding: 0.5em; border: 1px solid #c60; }
@media print { body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; } a { color: inherit; text-decoration: none; } }
@page { size: A4; margin: 18mm 16mm; }
"""


@dataclass(frozen=True)
class Entry:
    """One moment of the case's timeline: a message in or out, or an event."""

    at: datetime
    direction: str  # "in", "out", "event"
    title: str
    meta: str
    text: str
    file: str = ""  # its .eml in messages/


def write(
    session: Session,
    ref: str,
    folder: Path,
    now: datetime,
    describe: Callable[[Session, Case], dict[str, Any]],
) -> list[Path]:
    """Write case REF's file into FOLDER (new or empty); DESCRIBE is what `mailbot show --json`
    prints of a case. Returns the files written, the manifest last."""
    refuse_unless_empty(folder)
    case = db.case_by_ref(session, ref)
    if case is None:
        raise Refusal(f"no case {ref}")
    written: list[Path] = []

    def save(name: str, data: bytes) -> None:
        write_file(written, folder / name, data)

    files: dict[tuple[str, str], str] = {}  # (direction, Message-ID) -> its .eml
    for number, (_, direction, kind, raw, message_id) in enumerate(raw_messages(session, case), 1):
        name = f"messages/{number:03d}-{direction}-{kind}.eml"
        save(name, raw)
        files[direction, message_id] = name
    page = _page(case, describe(session, case), _timeline(session, case, files), now)
    save("index.html", page.encode())
    manifest = "".join(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(folder)}\n"
        for path in sorted(written)
    )
    save(MANIFEST, manifest.encode())
    return written


def _timeline(session: Session, case: Case, files: dict[tuple[str, str], str]) -> list[Entry]:
    """Every message in and out and every event of CASE, in time order."""
    entries = [
        Entry(
            m.received_at,
            "in",
            f"Received: {m.kind or 'message'}",
            f"from {m.from_name} <{m.from_address}>, subject “{m.subject}”, {m.message_id}",
            m.text,
            files.get(("in", m.message_id), ""),
        )
        for m in case_messages(session, case.id)
    ]
    for letter in case_letters(session, case.id):
        delivery = f"{letter.status}"
        if letter.sent_at:
            delivery += f" {_when(letter.sent_at)}, the server said “{letter.smtp_reply}”"
        if letter.undelivered_at:
            delivery += f"; UNDELIVERED ({letter.undelivered_reason})"
        text = parse_message(letter.raw, "").text if letter.raw else ""
        entries.append(
            Entry(
                letter.sent_at or letter.queued_at,
                "out",
                f"Sent: {letter.kind}",
                f"to {letter.to_address}, subject “{letter.subject}”, {letter.message_id}; "
                f"{delivery}; SHA-256 of the bytes sent {letter.sha256}",
                text,
                files.get(("out", letter.message_id), ""),
            )
        )
    entries += [
        Entry(e.at, "event", e.action, e.actor, e.detail) for e in case_events(session, case.id)
    ]
    return sorted(entries, key=lambda e: (e.at, e.direction != "in"))


def _page(case: Case, data: dict[str, Any], timeline: list[Entry], now: datetime) -> str:
    """The case file's one page: no script, no link, no image from anywhere."""
    rows = [
        ("Reference", case.ref),
        ("Customer", f"{case.customer_name} <{case.customer_email}>"),
        ("Subject", case.subject),
        ("Received", _when(case.received_at)),
        ("Status", f"{case.status} (level {case.level})"),
        ("First response due", _when(case.first_response_due)),
        ("May go to the ADR scheme from", _when(case.adr_date)),
        ("ADR notice", f"{_when(case.adr_notice_sent_at)} {case.adr_notice_decision}"),
        ("Deadlock letter", f"{_when(case.deadlock_sent_at)} {case.deadlock_position}"),
        ("Resolved", f"{_when(case.resolved_at)} {case.resolution_summary}"),
        ("Letters awaiting post", ", ".join(data["by_post_due"]) or "none"),
    ]
    if (scheme := data["adr_scheme"]) is not None:
        rows.append(("With the ADR scheme", f"{scheme['reference']}, {scheme['outcome'] or ''}"))
    summary = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    decisions = "".join(
        f"<tr><td>{escape(_when(e.at))}</td><td>{escape(e.title)}</td><td>{escape(e.meta)}"
        f"</td><td>{escape(e.text)}</td></tr>"
        for e in timeline
        if e.direction == "event"
    )
    erased = ""
    if case.personal_data_erased_at is not None:
        erased = (
            f'<p class="erased">The customer\'s personal data was erased on '
            f"{escape(_when(case.personal_data_erased_at))} (UK GDPR): the messages' text, "
            "names, addresses and bytes are gone; their times, kinds and the digests in the "
            "case's tamper-evident chain remain.</p>"
        )
    entries = "".join(_entry(number, e) for number, e in enumerate(timeline, 1))
    title = escape(f"Case file {case.ref}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
        f'<p class="meta">Written by mailbot on {escape(_when(now))} from its records. '
        "Each message is in messages/ as the e-mail it was; MANIFEST.sha256 holds every "
        "file's SHA-256 (check with <code>sha256sum -c MANIFEST.sha256</code>).</p>\n"
        f'{erased}<h2>Summary</h2>\n<table class="summary">{summary}</table>\n'
        '<h2>Decisions and who made them</h2>\n<table class="decisions"><tr>'
        '<th class="when">When</th><th class="what">What</th><th class="who">Who</th>'
        f"<th>Detail</th></tr>{decisions}</table>\n"
        f"<h2>Timeline</h2>\n{entries}\n</body></html>\n"
    )


def _entry(number: int, entry: Entry) -> str:
    file = f" — {escape(entry.file)}" if entry.file else ""
    who = f"by {entry.meta}" if entry.direction == "event" else entry.meta
    text = f"<pre>{escape(entry.text)}</pre>" if entry.text else ""
    if entry.direction != "event" and not entry.text:
        text = "<p><em>(no text: erased, or never written)</em></p>"
    return (
        f'<div class="entry {entry.direction}"><div class="meta">{number}. '
        f"{escape(_when(entry.at))}{file}</div><strong>{escape(entry.title)}</strong>"
        f'<div class="meta">{escape(who)}</div>{text}</div>\n'
    )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "—"
