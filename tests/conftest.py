"""Fixtures: real Dovecot, a real SMTP server and a real database (SQLite, PostgreSQL) per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from imapclient import IMAPClient

from mailbot.cli import main
from sandbox import Dovecot, Envelope, Postgres, SmtpSink, sandbox_config

PASSWORD = "secret"
TEAM_LEADER, AGENT, MANAGER, DPO = (
    "tl@provider.example",
    "agent@provider.example",
    "boss@provider.example",
    "dpo@provider.example",
)
STAFF = {TEAM_LEADER, AGENT, MANAGER, DPO}
USERS = 500
_users = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    # one mailbox user per test; passwd-file is read once, so create them all up front
    server = Dovecot({f"complaints{n}": PASSWORD for n in range(1, USERS + 1)})
    server.start()
    yield server
    server.cleanup()


# Tests run on SQLite only (too slow to run twice: the ten-week replay costs ~50 s more on
# PostgreSQL, a process and a new connection per tick), as does any test marked
# @pytest.mark.sqlite_only. MAILBOT_TEST_ALL_DATABASES=1 runs them on both.
SQLITE_ONLY = {
    "tests/test_procedure_e2e.py::test_ten_weeks_replayed_every_half_hour_keep_the_code",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: run on SQLite only (too slow to run twice)")
    config.addinivalue_line("markers", "postgresql_only: what only PostgreSQL allows")


ALL_DATABASES = os.environ.get("MAILBOT_TEST_ALL_DATABASES") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out (not skip) the variants a test is not for: SQLite-only, PostgreSQL-only."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        database = callspec.params.get("db_url") if callspec is not None else None
        only_sqlite = item.nodeid.split("[")[0] in SQLITE_ONLY or item.get_closest_marker(
            "sqlite_only"
        )
        only_postgresql = item.get_closest_marker("postgresql_only")
        leave_out = (database == "postgresql" and only_sqlite and not ALL_DATABASES) or (
            database == "sqlite" and only_postgresql
        )
        (dropped if leave_out else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL cluster, started the first time a test asks for one."""
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for one test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailbot.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@dataclass
class Mailbot:
    """A configured mailbot for one test: its own IMAP user, SMTP sink and database."""

    config: Path
    db_url: str
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


def write_config(path: Path, *, imap_port: int, user: str, smtp_port: int, db: Path | str) -> None:
    """A config file; DB is a SQLite file or a database URL."""
    url = f"sqlite:///{db}" if isinstance(db, Path) else db
    path.write_text(
        sandbox_config(
            imap_port=imap_port,
            user=user,
            password=PASSWORD,
            smtp_port=smtp_port,
            database_url=url,
        )
    )


@pytest.fixture
def mailbot(tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink, db_url: str) -> Mailbot:
    """Runs each test that uses it twice: on SQLite and on PostgreSQL."""
    user = f"complaints{next(_users)}"
    config = tmp_path / "config.toml"
    write_config(config, imap_port=dovecot.port, user=user, smtp_port=smtp_sink.port, db=db_url)
    return Mailbot(config, db_url, dovecot, smtp_sink, user)
