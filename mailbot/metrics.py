"""Prometheus metrics: counters where things happen, the database's state read at each scrape."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mailbot.outbox import SendReport
from mailbot.outcome import Outcome
from mailbot.store import counts
from mailbot.store.connection import DatabaseError
from mailbot.store.db import Engine, Session
from mailbot.store.models import OutboundStatus

log = logging.getLogger("mailbot")


class Metrics:
    """mailbot's own registry (not the library's global one): what [metrics] listen serves."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], wall: Callable[[], float] = time.time
    ) -> None:
        self.registry = CollectorRegistry()
        self.wall = wall
        self.started = wall()
        self.last_poll: float | None = None  # (wall-clock seconds) of the last successful poll
        self.last_tick: float | None = None
        r = self.registry
        self.messages = Counter(
            "mailbot_messages_fetched",
            "Messages fetched from the mailbox, by what became of them",
            ["outcome"],
            registry=r,
        )
        self.cases_opened = Counter("mailbot_cases_opened", "Cases opened", registry=r)
        self.letters = {
            outcome: Counter(
                f"mailbot_letters_{outcome}",
                f"Letters {outcome} by the SMTP server, by kind",
                ["kind"],
                registry=r,
            )
            for outcome in ("sent", "deferred", "failed")
        }
        self.imap_up = Gauge(
            "mailbot_imap_up", "1 if the last IMAP poll reached the server", registry=r
        )
        self.smtp_up = Gauge(
            "mailbot_smtp_up", "1 if the last send reached the SMTP server", registry=r
        )
        r.register(_State(engine, clock, self))

    def fetched(self, outcome: Outcome) -> None:
        """One message taken from the mailbox, and what became of it."""
        label = outcome.disposition.value
        if outcome.duplicate:
            label = "duplicate"
        elif outcome.left_in_mailbox:
            label = "left_in_mailbox"
        self.messages.labels(label).inc()
        if outcome.new_case and not outcome.duplicate:
            self.cases_opened.inc()

    def sent(self, report: SendReport) -> None:
        """The letters one send answered, by kind."""
        for (kind, outcome), count in report.letters.items():
            if outcome in self.letters:
                self.letters[outcome].labels(kind).inc(count)

    def polled(self, reached: bool) -> None:
        self.imap_up.set(1 if reached else 0)
        if reached:
            self.last_poll = self.wall()

    def ticked(self) -> None:
        self.last_tick = self.wall()

    def since(self, moment: float | None) -> float:
        """Seconds since MOMENT, or since start-up if it has not happened yet."""
        return self.wall() - (self.started if moment is None else moment)

    def serve(self, listen: str) -> tuple[WSGIServer, Thread]:
        """prometheus_client's own HTTP server on LISTEN ("host:port"), in its thread."""
        host, _, port = listen.rpartition(":")
        return start_http_server(int(port), addr=host.strip("[]"), registry=self.registry)


class _State(Collector):
    """What the database holds now, read when Prometheus scrapes, not counted along the way."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime], metrics: Metrics) -> None:
        self.engine = engine
        self.clock = clock
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield _gauge(
            "mailbot_last_successful_poll_age_seconds",
            "Seconds since the mailbox was last read (since start-up, if not yet)",
            self.metrics.since(self.metrics.last_poll),
        )
        yield _gauge(
            "mailbot_last_successful_tick_age_seconds",
            "Seconds since the procedure's timers last ran (since start-up, if not yet)",
            self.metrics.since(self.metrics.last_tick),
        )
        try:
            yield from self._database()
        except DatabaseError as exc:  # the scrape still answers; the gauges are absent
            log.warning("metrics: the database was not read: %s", str(exc).splitlines()[0])

    def _database(self) -> list[GaugeMetricFamily]:
        now = self.clock()
        with Session(self.engine) as session:
            depth = counts.letter_count(session, OutboundStatus.QUEUED)
            oldest = counts.oldest_queued_at(session, now)
            quarantined = counts.quarantined_count(session)
            overdue = counts.overdue_first_response_count(session, now)
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        return [
            _gauge("mailbot_outbox_letters", "Letters queued in the outbox, not yet sent", depth),
            _gauge(
                "mailbot_outbox_oldest_letter_age_seconds",
                "How long the oldest letter due to go has waited in the outbox (0: none waits)",
                max(age, 0.0),
            ),
            _gauge(
                "mailbot_quarantined_messages", "Messages set aside in the quarantine", quarantined
            ),
            _gauge(
                "mailbot_first_responses_overdue",
                "Open cases past their first-response due time with no reply from staff (R2)",
                overdue,
            ),
        ]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))
