"""The long-running loop: poll the mailbox and send the outbox on a schedule, stop on a signal."""

from __future__ import annotations

import ctypes
import logging
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

import schedule
from imapclient.exceptions import IMAPClientError

from mailbot.app import App
from mailbot.config import MailboxSettings
from mailbot.store.lock import DatabaseLock
from mailbot.transport.imap import MailboxUnavailable, MailboxWatcher

log = logging.getLogger("mailbot")

SUMMARY_SECONDS = 300


@dataclass
class Outages:
    """Which server is down: one log line when it goes, one when it comes back; back-off between."""

    first_delay: float = 1.0
    longest_delay: float = 300.0
    failures: dict[str, int] = field(default_factory=dict)
    retry_at: float = 0.0  # time.monotonic() before which the mailbox is not polled again

    def down(self, server: str, error: object) -> None:
        count = self.failures.get(server, 0) + 1
        self.failures[server] = count
        delay = min(self.first_delay * 2 ** (count - 1), self.longest_delay)
        delay *= random.uniform(0.5, 1.0)  # jitter: restarted daemons do not retry in step
        self.retry_at = time.monotonic() + delay
        if count == 1:
            log.warning("%s unreachable, retrying with back-off: %s", server, error)
        else:
            log.debug("%s still unreachable (attempt %d, next in %.0fs)", server, count, delay)

    def up(self, server: str) -> None:
        count = self.failures.pop(server, 0)
        if count:
            log.info("%s reachable again after %d failed attempt(s)", server, count)
        if not self.failures:
            self.retry_at = 0.0


def few_malloc_arenas(arenas: int = 1) -> bool:
    """Have glibc's malloc share ARENAS arenas among all threads (False where not glibc).

    By default each thread that allocates gets an arena of its own, and memory freed in
    one is not reused by another: the sending, reading and SMTP threads of a drained
    backlog held about 12 MB more at the peak for it. Call before the threads start.
    """
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


_M_ARENA_MAX = -8  # glibc's malloc.h


def run_cycle(app: App, stop: threading.Event, outages: Outages | None = None) -> bool:
    """One poll, one tick of the procedure and one send; False if a mail server was unreachable."""
    outages = outages or Outages()
    app.resume_pending()
    reachable = True
    try:
        app.poll(stop)
        outages.up("imap")
    except (MailboxUnavailable, OSError, IMAPClientError) as exc:
        # a server that goes away mid-run surfaces as a socket or protocol error
        outages.down("imap", exc)
        reachable = False
    return tick_and_send(app, outages) and reachable


def tick_and_send(app: App, outages: Outages) -> bool:
    """The procedure's timers, then the outbox; False if the SMTP server was unreachable."""
    report = app.tick()
    if report.done:
        log.info(report.describe())
    sent = app.send()
    if sent.unreachable:
        outages.down("smtp", sent.error)
        return False
    outages.up("smtp")
    return True


def run_forever(app: App, lock: DatabaseLock, stop: threading.Event | None = None) -> None:
    """Run cycles every poll_seconds until SIGTERM or SIGINT, finishing the message in hand."""
    stop = stop or threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping after the message in hand", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    outages = Outages()
    scheduler = schedule.Scheduler()
    scheduler.every(app.settings.mailbox.poll_seconds).seconds.do(_guarded, app, stop, outages)
    scheduler.every(app.settings.procedure.tick_seconds).seconds.do(_guarded_tick, app, outages)
    scheduler.every(30).seconds.do(lock.refresh)
    scheduler.every(SUMMARY_SECONDS).seconds.do(lambda: log.info(app.summary()))
    log.info(
        "mailbot started: polling %s every %ds",
        app.settings.mailbox.folder,
        app.settings.mailbox.poll_seconds,
    )
    _guarded(app, stop, outages)
    watch = Watch(app.settings.mailbox) if app.settings.mailbox.idle else None
    while not stop.is_set():
        scheduler.run_pending()
        if outages.failures and time.monotonic() >= outages.retry_at:
            _guarded(app, stop, outages)  # back-off over: retry before the next poll is due
        pause = scheduler.idle_seconds
        pause = max(0.0, min(pause if pause is not None else 1.0, 1.0))
        if watch is not None and watch.new_mail(pause):
            _guarded(app, stop, outages)  # IDLE said so: no waiting for the next poll
        elif watch is None or not watch.active:
            stop.wait(pause)
    if watch is not None:
        watch.close()
    log.info(app.summary())
    log.info("mailbot stopped")


class Watch:
    """IDLE when the server offers it, reconnecting with back-off; polling covers the gaps."""

    def __init__(self, settings: MailboxSettings) -> None:
        self.settings = settings
        self.watcher: MailboxWatcher | None = None
        self.retry_at = 0.0
        self.failures = 0
        self.unsupported = False

    @property
    def active(self) -> bool:
        return self.watcher is not None

    def new_mail(self, timeout: float) -> bool:
        if self.watcher is None and not self.unsupported and time.monotonic() >= self.retry_at:
            self._start()
        if self.watcher is None:
            return False
        try:
            return self.watcher.wait(timeout)
        except (OSError, IMAPClientError) as exc:
            log.warning("imap idle connection lost, polling until it is back: %s", exc)
            self._failed()
            return True  # look now: mail may have come while the connection was going

    def _start(self) -> None:
        watcher = MailboxWatcher(self.settings)
        try:
            if not watcher.start():
                log.info(
                    "the IMAP server does not offer IDLE: polling every %ds",
                    self.settings.poll_seconds,
                )
                self.unsupported = True
                return
        except (MailboxUnavailable, OSError, IMAPClientError) as exc:
            log.debug("imap idle connection failed: %s", exc)
            self._failed()
            return
        if self.failures:
            log.info("imap idle connection back")
        self.watcher, self.failures = watcher, 0
        log.debug("waiting in IMAP IDLE on %s", self.settings.folder)

    def _failed(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
        self.watcher = None
        self.failures += 1
        self.retry_at = time.monotonic() + min(2.0**self.failures, 300.0) * random.uniform(0.5, 1)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()


def _guarded_tick(app: App, outages: Outages) -> None:
    try:
        tick_and_send(app, outages)
    except Exception:
        log.exception("tick failed; retrying at the next one")


def _guarded(app: App, stop: threading.Event, outages: Outages) -> None:
    # the daemon never dies of one bad cycle: log it and try again at the next one
    if time.monotonic() < outages.retry_at:
        return  # backing off
    try:
        run_cycle(app, stop, outages)
    except Exception:
        log.exception("cycle failed; retrying at the next poll")
