"""systemd's notify protocol (Type=notify): READY=1, the watchdog's WATCHDOG=1, a STATUS= line."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("mailbot")


class Notifier:
    """Datagrams to $NOTIFY_SOCKET (sd_notify(3)); with no socket set, every call does nothing.

    The watchdog is pinged only by the daemon's loop, never by a thread of its own: a loop
    stuck (an IMAP call that never returns) stops the pings, and systemd restarts the daemon.
    """

    def __init__(
        self, environ: Mapping[str, str], monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        # "@name" is a Linux abstract socket: its name starts with a NUL byte
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if address else None
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        ours = environ.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid())
        # pinged twice per interval, as sd_watchdog_enabled(3) advises
        self.ping_every = int(watchdog_usec) / 2e6 if watchdog_usec.isdigit() and ours else None
        self.monotonic = monotonic
        self.last_ping = float("-inf")
        self.is_ready = False

    def _send(self, state: str) -> None:
        if self.socket is None:
            return
        try:
            self.socket.sendto(state.encode("utf-8", "replace"), self.address)
        except OSError as exc:  # systemd gone or restarting: the daemon's work goes on
            log.debug("notify socket %r: %s", self.address, exc)

    def ready(self) -> None:
        """Once: start-up is over (the mailbox was reached)."""
        if not self.is_ready:
            self.is_ready = True
            self._send("READY=1")

    def alive(self) -> None:
        """From the loop, each time round: WATCHDOG=1 when half the interval has passed."""
        now = self.monotonic()
        if self.ping_every is not None and now - self.last_ping >= self.ping_every:
            self.last_ping = now
            self._send("WATCHDOG=1")

    def status(self, line: str) -> None:
        self._send(f"STATUS={line}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
