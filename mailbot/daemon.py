"""The long-running loop: poll, tick and send on a schedule, each server backing off alone."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import FrameType
from typing import ParamSpec

import schedule
from imapclient.exceptions import IMAPClientError

from mailbot.app import App
from mailbot.backoff import Backoff
from mailbot.config import MailboxSettings
from mailbot.store.lock import DatabaseLock
from mailbot.transport.imap import MailboxUnavailable, MailboxWatcher
from mailbot.transport.oauth2 import TokenSource

log = logging.getLogger("mailbot")

SUMMARY_SECONDS = 300
P = ParamSpec("P")


@dataclass
class Outage:
    """One server's back-off: one log line when it goes down, one when it is back."""

    server: str
    backoff: Backoff = field(default_factory=Backoff)

    @property
    def down(self) -> bool:
        return self.backoff.failures > 0

    def may_try(self) -> bool:
        """False while backing off."""
        return self.backoff.ready(time.monotonic())

    def failed(self, error: object) -> None:
        delay = self.backoff.failed(time.monotonic())
        count = self.backoff.failures
        if count == 1:
            log.warning("%s unreachable, retrying with back-off: %s", self.server, error)
        else:
            log.debug("%s still unreachable (attempt %d, next in %.0fs)", self.server, count, delay)

    def reached(self) -> None:
        count = self.backoff.succeeded()
        if count:
            log.info("%s reachable again after %d failed attempt(s)", self.server, count)


@dataclass
class Outages:
    """Each server backs off on its own: SMTP down never holds up the mailbox or the timers,
    IMAP down never holds up the outbox."""

    imap: Outage = field(default_factory=lambda: Outage("imap"))
    smtp: Outage = field(default_factory=lambda: Outage("smtp"))


def run_cycle(app: App, stop: threading.Event, outages: Outages | None = None) -> bool:
    """One poll, one tick of the procedure and one send; False if a mail server was unreachable."""
    outages = outages or Outages()
    polled = poll(app, stop, outages)
    timers(app)
    for _, letters in CLOCK_LETTERS:
        letters(app)
    return send(app, outages) and polled


def poll(app: App, stop: threading.Event, outages: Outages, answered: bool = False) -> bool:
    """Process what a crash left stored, then fetch and process new mail, unless IMAP is backing
    off and has not just ANSWERED (over IDLE); False if IMAP was not reached. A backlog is
    taken in rounds, the outbox sent after each, so acknowledgements go while it drains."""
    app.resume_pending()
    if not (answered or outages.imap.may_try()):
        return False
    try:
        while app.poll(stop).more and not stop.is_set():
            app.notifier.alive()  # a backlog's rounds: the loop is still going round
            send(app, outages)
    except (MailboxUnavailable, OSError, IMAPClientError) as exc:
        # a server that goes away mid-run surfaces as a socket or protocol error
        outages.imap.failed(exc)
        app.metrics.polled(reached=False)
        return False
    outages.imap.reached()
    app.metrics.polled(reached=True)
    app.notifier.ready()  # (once) the mailbox is reached: start-up is over
    return True


def timers(app: App) -> None:
    """The procedure's timers: their letters wait in the outbox until SMTP takes them."""
    report = app.tick()
    app.metrics.ticked()
    if report.done:
        log.info(report.describe())


def digest(app: App) -> None:
    """[reports] weekly_digest: the week's digest to the managers, once, when it is due."""
    if app.settings.reports.weekly_digest:
        app.weekly_digest()


def held_list(app: App) -> None:
    """What was held since the last list, to the team leaders at an opening or the cut-off."""
    app.held_list()


# the letters the clock sends beside the procedure's timers: after each tick, in the daemon
# and in `mailbot tick` alike
CLOCK_LETTERS: tuple[tuple[str, Callable[[App], None]], ...] = (
    ("weekly digest", digest),
    ("held list", held_list),
)


def send(app: App, outages: Outages) -> bool:
    """The outbox, unless SMTP is backing off; False if the SMTP server was not reached."""
    if not outages.smtp.may_try():
        return False
    sent = app.send()
    app.metrics.smtp_up.set(0 if sent.unreachable else 1)
    if sent.unreachable:
        outages.smtp.failed(sent.error)
        return False
    outages.smtp.reached()
    return True


def run_forever(
    app: App,
    lock: DatabaseLock,
    stop: threading.Event | None = None,
    outages: Outages | None = None,
) -> None:
    """Poll every poll_seconds (and on IDLE's word), tick every tick_seconds, send after each,
    until SIGTERM, SIGINT or STOP, finishing the message in hand. Each server has its own
    back-off, so one being down never stops the work of the other."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():  # (signals reach no other)
        _stop_on_signals(stop)
    outages = outages or Outages()
    settings = app.settings
    scheduler = schedule.Scheduler()
    scheduler.every(settings.mailbox.poll_seconds).seconds.do(_poll_and_send, app, stop, outages)
    scheduler.every(settings.procedure.tick_seconds).seconds.do(_tick_and_send, app, outages)
    scheduler.every(30).seconds.do(lock.refresh)
    scheduler.every(SUMMARY_SECONDS).seconds.do(lambda: log.info(app.summary()))
    log.info(
        "mailbot started: polling %s every %ds",
        settings.mailbox.folder,
        settings.mailbox.poll_seconds,
    )
    _guarded("poll", poll, app, stop, outages)
    _tick_and_send(app, outages)
    watch = Watch(settings.mailbox, app.tokens) if settings.mailbox.idle else None
    while not stop.is_set():
        # the watchdog's ping comes from here alone: a call that hangs (IMAP) stops it
        app.notifier.alive()
        scheduler.run_pending()
        # a back-off over: try that server again before its next turn is due
        if outages.imap.down and outages.imap.may_try():
            _poll_and_send(app, stop, outages)
        if outages.smtp.down and outages.smtp.may_try():
            _guarded("send", send, app, outages)
        pause = scheduler.idle_seconds
        pause = max(0.0, min(pause if pause is not None else 1.0, 1.0))
        wake = watch.new_mail(pause) if watch is not None else Wake.NOTHING
        if wake is not Wake.NOTHING:  # no waiting for the next poll
            _poll_and_send(app, stop, outages, answered=wake is Wake.ANSWERED)
        elif watch is None or not watch.active:
            stop.wait(pause)
    app.notifier.stopping()
    if watch is not None:
        watch.close()
    log.info(app.summary())
    log.info("mailbot stopped")


def _stop_on_signals(stop: threading.Event) -> None:
    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping after the message in hand", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)


class Wake(Enum):
    """What IDLE says about the mailbox."""

    NOTHING = "nothing new"
    ANSWERED = "new mail announced, or the connection made: the server answers, look now"
    LOST = "the connection was lost: mail may have come while it went, look unless backing off"


class Watch:
    """IDLE when the server offers it, reconnecting with back-off; polling covers the gaps."""

    def __init__(self, settings: MailboxSettings, tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self.tokens = tokens
        self.watcher: MailboxWatcher | None = None
        self.backoff = Backoff(first=2.0)
        self.unsupported = False

    @property
    def active(self) -> bool:
        return self.watcher is not None

    def new_mail(self, timeout: float) -> Wake:
        """Wait up to TIMEOUT seconds for word from the server."""
        startable = self.watcher is None and not self.unsupported
        if startable and self.backoff.ready(time.monotonic()) and self._start():
            return Wake.ANSWERED  # what came while there was no IDLE is fetched now
        if self.watcher is None:
            return Wake.NOTHING
        try:
            return Wake.ANSWERED if self.watcher.wait(timeout) else Wake.NOTHING
        except (OSError, IMAPClientError) as exc:
            log.warning("imap idle connection lost, polling until it is back: %s", exc)
            self._failed()
            return Wake.LOST

    def _start(self) -> bool:
        """Connect and IDLE; False if that failed or the server does not offer IDLE."""
        watcher = MailboxWatcher(self.settings, tokens=self.tokens)
        try:
            if not watcher.start():
                log.info(
                    "the IMAP server does not offer IDLE: polling every %ds",
                    self.settings.poll_seconds,
                )
                self.unsupported = True
                return False
        except (MailboxUnavailable, OSError, IMAPClientError) as exc:
            log.debug("imap idle connection failed: %s", exc)
            self._failed()
            return False
        if self.backoff.succeeded():
            log.info("imap idle connection back")
        self.watcher = watcher
        log.debug("waiting in IMAP IDLE on %s", self.settings.folder)
        return True

    def _failed(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
        self.watcher = None
        self.backoff.failed(time.monotonic())

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()


def _poll_and_send(
    app: App, stop: threading.Event, outages: Outages, answered: bool = False
) -> None:
    _guarded("poll", poll, app, stop, outages, answered)
    _guarded("send", send, app, outages)  # whatever became of the poll: the outbox goes
    _guarded("status", _status, app, outages)


def _tick_and_send(app: App, outages: Outages) -> None:
    _guarded("tick", timers, app)
    for what, letters in CLOCK_LETTERS:
        _guarded(what, letters, app)
    _guarded("send", send, app, outages)
    _guarded("status", _status, app, outages)


def _status(app: App, outages: Outages) -> None:
    """systemd's status line (`systemctl status mailbot`): the queue and the last poll."""
    last = app.metrics.last_poll
    polled = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last)) if last else "none yet"
    down = [o.server.upper() for o in (outages.imap, outages.smtp) if o.down]
    app.notifier.status(
        f"{app.outbox_depth()} letter(s) waiting in the outbox; last poll {polled}"
        + "".join(f"; {server} unreachable" for server in down)
    )


def _guarded(what: str, job: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
    # the daemon never dies of one bad poll, tick or send: log it and try again at the next one
    try:
        job(*args, **kwargs)
    except Exception:
        log.exception("%s failed; retrying at the next one", what)
