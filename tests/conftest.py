"""Fixtures: real Dovecot, a real SMTP server and a real SQLite file for each test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from imapclient import IMAPClient

from mailbot.cli import main
from mailbot.sandbox import Dovecot, Envelope, SmtpSink

PASSWORD = "secret"
TEAM_LEADER, AGENT, MANAGER = (
    "tl@provider.example",
    "agent@provider.example",
    "boss@provider.example",
)
STAFF = {TEAM_LEADER, AGENT, MANAGER}
USERS = 500
_users = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    # one mailbox user per test; passwd-file is read once, so create them all up front
    server = Dovecot({f"complaints{n}": PASSWORD for n in range(1, USERS + 1)})
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@dataclass
class Mailbot:
    """A configured mailbot for one test: its own IMAP user, SMTP sink and SQLite file."""

    config: Path
    db_path: Path
    dovecot: Dovecot
    smtp: SmtpSink
    user: str

    def __call__(self, *args: str) -> int:
        return main(["--config", str(self.config), *args])

    def imap(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.dovecot.port, ssl=False)
        client.normalise_times = False
        client.login(self.user, PASSWORD)
        return client

    def customer_mail(self) -> list[Envelope]:
        """What the SMTP server received for anyone but staff."""
        return [e for e in self.smtp.received if not set(e.rcpt_tos) & STAFF]

    def customer_kinds(self) -> list[str]:
        """The kinds of letter the customers received, in order."""
        return [str(e.message["X-Mailbot-Kind"]) for e in self.customer_mail()]

    def staff_mail(self, address: str) -> list[Envelope]:
        return [e for e in self.smtp.received if address in e.rcpt_tos]

    def append(self, raw: bytes, when: datetime | None = None, folder: str = "INBOX") -> None:
        with self.imap() as client:
            client.append(folder, raw, msg_time=when)

    def folder_count(self, folder: str) -> int:
        with self.imap() as client:
            folder = folder.replace("/", ".")  # Dovecot's Maildir++ delimiter
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])


def write_config(path: Path, *, imap_port: int, user: str, smtp_port: int, db: Path) -> None:
    path.write_text(
        f"""\
[mailbox]
host = "127.0.0.1"
port = {imap_port}
security = "none"
username = "{user}"
password = "{PASSWORD}"
poll_seconds = 1

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from_address = "complaints@provider.example"
from_name = "Provider Complaints"

[database]
url = "sqlite:///{db}"

[[staff]]
email = "tl@provider.example"
name = "Terry Leader"
role = "team_leader"

[[staff]]
email = "agent@provider.example"
name = "Ann Agent"
role = "agent"

[[staff]]
email = "boss@provider.example"
name = "Morgan Manager"
role = "manager"

[staff_auth]
trusted_authserv_ids = ["mx.provider.example"]
require = "dmarc"
"""
    )


@pytest.fixture
def mailbot(tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink) -> Mailbot:
    user = f"complaints{next(_users)}"
    config = tmp_path / "config.toml"
    db = tmp_path / "mailbot.db"
    write_config(config, imap_port=dovecot.port, user=user, smtp_port=smtp_sink.port, db=db)
    return Mailbot(config, db, dovecot, smtp_sink, user)
