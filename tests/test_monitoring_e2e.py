"""A running daemon tells systemd and Prometheus what it is doing: notify socket, metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from sandbox import free_port
from tests.conftest import Mailbot
from tests.test_daemon_e2e import wait_until
from tests.test_intake_e2e import complaint


@contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """An AF_UNIX datagram socket as systemd binds one, under an abstract name ('@...')."""
    name = f"@mailbot-test-{uuid.uuid4().hex}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + name[1:])
    listener.settimeout(0.2)
    try:
        yield listener, name
    finally:
        listener.close()


class Datagrams:
    """What the daemon told the notify socket, each with when it came."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.seen: list[tuple[float, str]] = []

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.listener.recv(4096)
            except TimeoutError:
                continue
            self.seen.append((time.monotonic(), data.decode()))

    def until(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(wanted in said for _, said in self.seen):
            assert time.monotonic() < deadline, f"no {wanted!r} in {self.said()}"
            self.read(0.2)

    def said(self) -> list[str]:
        return [said for _, said in self.seen]

    def pings_since(self, moment: float) -> int:
        return sum(1 for at, said in self.seen if at >= moment and said == "WATCHDOG=1")


def daemon(mailbot: Mailbot, log: Path, **environ: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mailbot", "--config", str(mailbot.config), "run"]
    return subprocess.Popen(command, stderr=log.open("ab"), env={**os.environ, **environ})


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


@pytest.mark.sqlite_only  # the protocol is the same whatever the database
def test_systemd_hears_ready_then_the_watchdog_and_the_status_line_then_stopping(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    mailbot.append(complaint(sender="Pat <pat@example.net>")[0])
    with notify_socket() as (listener, name):
        told = Datagrams(listener)
        process = daemon(
            mailbot, tmp_path / "daemon.log", NOTIFY_SOCKET=name, WATCHDOG_USEC="1000000"
        )
        try:
            told.until("READY=1", 30)
            told.until("STATUS=", 10)
            started = time.monotonic()
            told.read(3)
            assert told.pings_since(started) >= 3, told.said()  # every half second or so
        finally:
            assert stop(process) == 0
        told.until("STOPPING=1", 5)
    said = told.said()
    assert said.index("READY=1") < said.index("STOPPING=1")
    status = [s for s in said if s.startswith("STATUS=")][-1]
    assert status.startswith("STATUS=0 letter(s) waiting in the outbox; last poll 20")
    assert status.endswith(" UTC")
    assert len(mailbot.customer_mail()) == 1


class FreezableProxy:
    """A TCP relay to the IMAP server that can stop answering, as a hung server does."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.thawed = threading.Event()
        self.thawed.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            self.thawed.wait()  # frozen: the connection waits in the backlog, unanswered
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.thawed.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.thawed.set()
        self.listener.close()


@pytest.mark.sqlite_only
def test_a_stuck_imap_call_stops_the_watchdog_so_systemd_can_restart_the_daemon(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    proxy = FreezableProxy(mailbot.dovecot.port)
    with notify_socket() as (listener, name):
        told = Datagrams(listener)
        process = daemon(
            mailbot,
            tmp_path / "daemon.log",
            NOTIFY_SOCKET=name,
            WATCHDOG_USEC="1000000",
            MAILBOT_MAILBOX_PORT=str(proxy.port),
            MAILBOT_MAILBOX_IDLE="false",  # a new connection each poll (poll_seconds = 1)
        )
        try:
            told.until("READY=1", 30)
            told.read(2)
            proxy.thawed.clear()  # the server hangs: the next poll waits on it
            told.read(2)  # (a ping or two as the loop comes round to its poll)
            frozen = time.monotonic()
            told.read(4)
            assert told.pings_since(frozen) == 0, "the watchdog must starve while IMAP hangs"
            assert process.poll() is None  # alive, and stuck: systemd's watchdog would fire
            proxy.thawed.set()  # the server answers again: the loop, and its pings, go on
            thawed = time.monotonic()
            told.read(3)
            assert told.pings_since(thawed) >= 2
        finally:
            proxy.close()
            assert stop(process) == 0


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics: each sample by its name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        body = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_prometheus_scrapes_what_the_daemon_did_and_what_waits(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    late = "late@example.net"
    mailbot.smtp.handler.answer = lambda stage, letter: (
        "451 4.3.0 try later" if stage == "RCPT" and late in letter.rcpt_tos else None
    )
    mailbot.append(complaint(sender="Pat <pat@example.net>")[0])
    mailbot.append(complaint(sender=f"Lee <{late}>")[0])
    mailbot.append(b"To: complaints@provider.example\r\nSubject: who am I\r\n\r\nno From\r\n")
    port = free_port()
    process = daemon(mailbot, tmp_path / "daemon.log", MAILBOT_METRICS_LISTEN=f"127.0.0.1:{port}")
    try:
        wait_until(lambda: mailbot.folder_count("INBOX") == 0, 30, "the mailbox to be read")
        kinds = ("acknowledgement",)
        wait_until(
            lambda: scrape(port).get(("mailbot_letters_deferred_total", (("kind", *kinds),))),
            30,
            "the deferred acknowledgement",
        )
        metrics = scrape(port)
        assert metrics[("mailbot_messages_fetched_total", (("outcome", "case"),))] == 2
        assert metrics[("mailbot_messages_fetched_total", (("outcome", "quarantined"),))] == 1
        assert metrics[("mailbot_cases_opened_total", ())] == 2
        assert metrics[("mailbot_letters_sent_total", (("kind", "acknowledgement"),))] == 1
        assert metrics[("mailbot_letters_deferred_total", (("kind", "acknowledgement"),))] == 1
        assert metrics[("mailbot_letters_sent_total", (("kind", "staff_notification"),))] >= 2
        assert ("mailbot_letters_failed_total", (("kind", "acknowledgement"),)) not in metrics
        assert metrics[("mailbot_outbox_letters", ())] == 1  # Lee's, to be tried again
        assert metrics[("mailbot_outbox_oldest_letter_age_seconds", ())] > 0
        assert metrics[("mailbot_quarantined_messages", ())] == 1
        assert metrics[("mailbot_imap_up", ())] == 1 and metrics[("mailbot_smtp_up", ())] == 1
        assert metrics[("mailbot_last_successful_poll_age_seconds", ())] < 10
        assert metrics[("mailbot_last_successful_tick_age_seconds", ())] < 70
        assert metrics[("mailbot_first_responses_overdue", ())] == 0

        # state is read from the database at each scrape: a day later, nobody has replied
        engine = create_engine(mailbot.db_url)
        with engine.begin() as connection:
            yesterday = datetime.now(UTC) - timedelta(days=1)
            connection.execute(text('UPDATE "case" SET first_response_due = :t'), {"t": yesterday})
        engine.dispose()
        assert scrape(port)[("mailbot_first_responses_overdue", ())] == 2

        mailbot.smtp.stop()  # the SMTP server goes away: the next send says so
        mailbot.append(complaint(sender="Sam <sam@example.net>")[0])
        wait_until(lambda: scrape(port)[("mailbot_smtp_up", ())] == 0, 30, "smtp down")
    finally:
        assert stop(process) == 0


@pytest.mark.sqlite_only
def test_systemd_hears_ready_only_once_the_mailbox_is_reached(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    proxy = FreezableProxy(mailbot.dovecot.port)
    proxy.thawed.clear()  # the IMAP server does not answer yet
    with notify_socket() as (listener, name):
        told = Datagrams(listener)
        process = daemon(
            mailbot,
            tmp_path / "daemon.log",
            NOTIFY_SOCKET=name,
            MAILBOT_MAILBOX_PORT=str(proxy.port),
        )
        try:
            told.read(3)
            assert "READY=1" not in told.said()
            proxy.thawed.set()
            told.until("READY=1", 30)
        finally:
            proxy.close()
            assert stop(process) == 0
