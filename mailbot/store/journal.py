"""The send journal: SMTP answers recorded at once while the database's writer is busy."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, bindparam, update

from mailbot.store.models import Outbound, OutboundStatus

log = logging.getLogger(__name__)
_OUTBOUND = Outbound.__table__  # type: ignore[attr-defined]  # SQLModel's table
_WHEN = ("sent_at", "next_attempt_at", "first_refused_at")  # the changes that hold a time


class SendJournal:
    """A small SQLite file of its own beside an SQLite database.

    While a backlog drains, each batch's transaction holds SQLite's one write lock for a good
    part of a second. Letters sent meanwhile have their SMTP answer recorded here at once (one
    fsync'd commit, as the outbox would), and are folded into the outbox when the lock is
    free: after the backlog, and before any other send, so a letter whose answer was recorded
    is never sent again, even after a crash. A fold may run twice (a crash between its two
    commits): each entry sets absolute values, so the second changes nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @classmethod
    def beside(cls, engine: Engine) -> SendJournal | None:
        """The journal of ENGINE's SQLite file; None for other databases (their rows lock)."""
        name = engine.url.database
        if engine.dialect.name != "sqlite" or not name or name == ":memory:":
            return None
        return cls(Path(f"{name}-sent"))

    def record(self, outbound_id: int, change: Mapping[str, object]) -> None:
        """Record the outcome of one send (the outbox columns to set), committed on return."""
        values = {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in change.items()
        }
        with self._lock:
            self._open().execute(
                "INSERT INTO sent (outbound_id, change) VALUES (?, ?)",
                (outbound_id, json.dumps(values)),
            )

    def fold(self, engine: Engine) -> int:
        """Apply every recorded outcome to the outbox (one commit), then forget them."""
        if self._db is None and not self.path.exists():
            return 0
        with self._lock:
            entries = self._open().execute("SELECT seq, outbound_id, change FROM sent").fetchall()
            if not entries:
                return 0
            shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
            for _, outbound_id, change in entries:
                values = json.loads(change)
                for key in _WHEN:
                    if values.get(key) is not None:
                        values[key] = datetime.fromisoformat(values[key])
                if "status" in values:
                    values["status"] = OutboundStatus(values["status"])
                shapes.setdefault(tuple(sorted(values)), []).append(
                    {f"new_{key}": value for key, value in values.items()} | {"row": outbound_id}
                )
            with engine.begin() as connection:
                for keys, rows in shapes.items():  # one executemany per kind of answer
                    columns: dict[str, object] = {key: bindparam(f"new_{key}") for key in keys}
                    statement = update(_OUTBOUND).where(_OUTBOUND.c.id == bindparam("row"))
                    connection.execute(statement.values(columns), rows)
            self._open().execute("DELETE FROM sent WHERE seq <= ?", (entries[-1][0],))
        log.info("send journal: %d answer(s) folded into the outbox", len(entries))
        return len(entries)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # as the database: an answer survives power loss
            db.execute(
                "CREATE TABLE IF NOT EXISTS sent"
                " (seq INTEGER PRIMARY KEY, outbound_id INTEGER NOT NULL, change TEXT NOT NULL)"
            )
            self._db = db
        return self._db
