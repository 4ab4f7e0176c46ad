"""The long-running loop: poll the mailbox and send the outbox on a schedule, stop on a signal."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import schedule

from mailbot.app import App
from mailbot.transport.imap import MailboxUnavailable

log = logging.getLogger("mailbot")


def run_cycle(app: App, stop: threading.Event) -> bool:
    """One poll, one tick of the procedure and one send; False if a mail server was unreachable."""
    app.resume_pending()
    reachable = True
    try:
        app.poll(stop)
    except MailboxUnavailable as exc:
        log.warning("imap unreachable, will retry: %s", exc)
        reachable = False
    return tick_and_send(app) and reachable


def tick_and_send(app: App) -> bool:
    """The procedure's timers, then the outbox; False if the SMTP server was unreachable."""
    report = app.tick()
    if report.done:
        log.info(report.describe())
    return not app.send().unreachable


def run_forever(app: App, stop: threading.Event | None = None) -> None:
    """Run cycles every poll_seconds until SIGTERM or SIGINT, finishing the message in hand."""
    stop = stop or threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping after the message in hand", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    scheduler = schedule.Scheduler()
    scheduler.every(app.settings.mailbox.poll_seconds).seconds.do(_guarded, app, stop)
    scheduler.every(app.settings.procedure.tick_seconds).seconds.do(_guarded_tick, app)
    log.info(
        "mailbot started: polling %s every %ds",
        app.settings.mailbox.folder,
        app.settings.mailbox.poll_seconds,
    )
    _guarded(app, stop)
    while not stop.is_set():
        scheduler.run_pending()
        idle = scheduler.idle_seconds
        stop.wait(max(0.0, min(idle if idle is not None else 1.0, 1.0)))
    log.info("mailbot stopped")


def _guarded_tick(app: App) -> None:
    try:
        tick_and_send(app)
    except Exception:
        log.exception("tick failed; retrying at the next one")


def _guarded(app: App, stop: threading.Event) -> None:
    # the daemon never dies of one bad cycle: log it and try again at the next one
    try:
        run_cycle(app, stop)
    except Exception:
        log.exception("cycle failed; retrying at the next poll")
