"""`python -m bench.corpus_report`: what the real intake makes of each corpus of real mail.

Each corpus in ../shared/corpus/ goes through Intake.receive on a throwaway SQLite file
(nothing is sent): how many messages opened a case, landed on one, were recorded as robots
(by kind) or were set aside, and why each set-aside one was.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailbot.app import build_app
from mailbot.config import load_settings
from mailbot.outcome import Outcome
from mailbot.store.models import Disposition, MessageKind
from sandbox import sandbox_config
from tests.corpus import corpus_dir, corpus_files

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
ROBOTS = (
    MessageKind.BOUNCE,
    MessageKind.READ_RECEIPT,
    MessageKind.REPORT,
    MessageKind.AUTO_REPLY,
    MessageKind.MAILING_LIST,
    MessageKind.NOTIFICATION,
    MessageKind.OWN_MAIL,
)


@dataclass
class Tally:
    """What became of one corpus's messages."""

    name: str
    messages: int = 0
    cases: int = 0  # opened a case
    replies: int = 0  # on a case, from a person
    robots: Counter[str] = field(default_factory=Counter)
    set_aside: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    def count(self, source: str, outcome: Outcome) -> None:
        self.messages += 1
        if outcome.kind in ROBOTS:
            self.robots[outcome.kind] += 1
        elif outcome.disposition is Disposition.CASE:
            self.cases += outcome.new_case
            self.replies += not outcome.new_case
        else:
            self.set_aside.append((source, outcome.reason or outcome.disposition.value))


def reply_trimmer_mail(body: bytes, number: int) -> bytes:
    """A customer's reply around one of email_reply_trimmer's bodies (they have no headers)."""
    return (
        f"From: Customer {number} <customer{number}@example.net>\r\n"
        "To: complaints@provider.example\r\nSubject: Re: my broadband complaint\r\n"
        f"Message-ID: <trimmer-{number}@example.net>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode() + body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def corpora() -> dict[str, list[tuple[str, bytes]]]:
    """Each corpus's messages as (file name, raw bytes)."""
    trimmer = corpus_files("email_reply_trimmer/test/emails")
    return {
        "mail-parser/tests/mails": [
            (p.name, p.read_bytes()) for p in corpus_files("mail-parser/tests/mails")
        ],
        "flufl.bounce (bounces)": [
            (p.name, p.read_bytes()) for p in corpus_files("flufl.bounce/flufl/bounce/tests/data")
        ],
        "email_reply_trimmer (wrapped)": [
            (p.name, reply_trimmer_mail(p.read_bytes(), n)) for n, p in enumerate(trimmer, 1)
        ],
    }


def ingest(name: str, messages: Iterable[tuple[str, bytes]], folder: Path) -> Tally:
    """Run MESSAGES through the real intake on a fresh SQLite file in FOLDER."""
    config = folder / f"{len(list(folder.iterdir()))}.toml"
    database = config.with_suffix(".db")
    config.write_text(
        sandbox_config(
            imap_port=1,
            user="nobody",
            password="x",
            smtp_port=1,
            database_url=f"sqlite:///{database}",
        )
    )
    app = build_app(load_settings(config, environ={}), clock=lambda: NOW)
    tally = Tally(name)
    try:
        for source, raw in messages:
            tally.count(source, app.intake.receive(raw, NOW, f"file {source}"))
    finally:
        app.engine.dispose()
    return tally


def report(tallies: list[Tally]) -> str:
    """A compact table, then each set-aside message with its reason."""
    kinds = [kind for kind in ROBOTS if any(t.robots[kind] for t in tallies)]
    heads = ["corpus", "messages", "new case", "reply", *kinds, "set aside"]
    counts = [
        [t.messages, t.cases, t.replies, *(t.robots[k] for k in kinds), len(t.set_aside)]
        for t in tallies
    ]
    table = [heads] + [
        [name, *map(str, row)]
        for name, row in [
            *((t.name, row) for t, row in zip(tallies, counts, strict=True)),
            ("total", [sum(column) for column in zip(*counts, strict=True)]),
        ]
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(heads))]
    rule = "  ".join("-" * width for width in widths)
    lines = []
    for number, row in enumerate(table):
        if number == len(table) - 1:
            lines.append(rule)
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append(rule)
    for tally in tallies:
        for source, reason in tally.set_aside:
            lines.append(f"set aside: {tally.name}/{source}: {reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpus_report", description=__doc__)
    parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # one line per message would bury the table
    print(f"corpus: {corpus_dir()}")
    with tempfile.TemporaryDirectory(prefix="mailbot-corpus-") as folder:
        tallies = [ingest(name, messages, Path(folder)) for name, messages in corpora().items()]
    print(report(tallies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
