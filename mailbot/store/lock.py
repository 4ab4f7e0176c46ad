"""One daemon at a time: a lock row in the database, taken by compare-and-set."""

from __future__ import annotations

import os
import socket
import time

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from mailbot.store.models import DaemonLock

STALE_SECONDS = 120.0  # a holder silent this long (on another host) is presumed dead


class LockHeld(Exception):
    """Another mailbot holds the lock."""


def me(what: str = "") -> str:
    """host:pid, and WHAT holds it when not the daemon itself (`host:pid tick`)."""
    return f"{socket.gethostname()}:{os.getpid()}" + (f" {what}" if what else "")


def _dead(holder: str) -> bool:
    """A holder on this host whose process is gone."""
    host, _, pid = holder.partition(" ")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def running(engine: Engine) -> list[str]:
    """Who holds a lock now (a daemon or a command), killed and silent holders left out."""
    with Session(engine) as session:
        rows = session.exec(select(DaemonLock)).all()
    now = time.time()
    return sorted(
        row.holder
        for row in rows
        if row.holder and now - row.heartbeat <= STALE_SECONDS and not _dead(row.holder)
    )


class DatabaseLock:
    """The `daemon` lock: acquire, refresh while working, release on a clean exit."""

    def __init__(self, engine: Engine, name: str = "daemon", what: str = "") -> None:
        self.engine = engine
        self.name = name
        self.holder = me(what)

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the holder."""
        with Session(self.engine) as session:
            row = session.get(DaemonLock, self.name)
            if row is None:
                session.add(DaemonLock(name=self.name))
                session.commit()
                row = session.get(DaemonLock, self.name)
                assert row is not None
            old_holder, old_beat = row.holder, row.heartbeat
        now = time.time()
        free = (
            not old_holder
            or old_holder == self.holder
            or now - old_beat > STALE_SECONDS
            or _dead(old_holder)
        )
        if not free:
            raise LockHeld(f"{old_holder} (last seen {now - old_beat:.0f}s ago)")
        with Session(self.engine) as session:
            taken = session.execute(
                update(DaemonLock)
                .where(col(DaemonLock.name) == self.name)
                .where(col(DaemonLock.holder) == old_holder)
                .where(col(DaemonLock.heartbeat) == old_beat)
                .values(holder=self.holder, heartbeat=now)
            )
            session.commit()
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise LockHeld("another mailbot took it at the same moment")

    def refresh(self) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(DaemonLock)
                .where(col(DaemonLock.name) == self.name)
                .where(col(DaemonLock.holder) == self.holder)
                .values(heartbeat=time.time())
            )
            session.commit()

    def release(self) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(DaemonLock)
                .where(col(DaemonLock.name) == self.name)
                .where(col(DaemonLock.holder) == self.holder)
                .values(holder="", heartbeat=0.0)
            )
            session.commit()
