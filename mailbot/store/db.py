"""The database: engine set-up and the queries the pipeline needs."""

from __future__ import annotations

import bisect
import sqlite3
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine as Engine
from sqlalchemy import bindparam, event, insert, union_all
from sqlalchemy import select as sql_select
from sqlmodel import Session as Session
from sqlmodel import col, create_engine, select

from mailbot.mail import chain as chained
from mailbot.store import chain, migrations
from mailbot.store.migrations import SchemaError as SchemaError
from mailbot.store.models import (
    Case,
    Checkpoint,
    Disposition,
    Event,
    Inbound,
    InboundRaw,
    Outbound,
    OutboundStatus,
    RefCounter,
    Suppression,
)


def open_database(url: str) -> Engine:
    """An engine for URL with the schema in place: an empty database gets it at once.

    A database at an older revision raises SchemaError (run `mailbot migrate`). SQLite runs
    in WAL mode, waiting on locks. NUL characters are dropped from every text parameter on
    every database: PostgreSQL refuses them in text, and both databases should keep the same.
    """
    engine = connect(url)
    try:
        migrations.check(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def connect(url: str) -> Engine:
    """An engine for URL, as mailbot uses it, without looking at the schema."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "before_cursor_execute", _strip_nul, retval=True)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or SQLite in memory)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///"))


def open_read_only(url: str) -> Engine:
    """An engine for URL that creates and changes nothing: for `mailbot check`.

    SQLite: the file is opened read-only (a missing one stays missing: connecting fails), its
    journal mode left as it is. PostgreSQL: mailbot's engine, on which check runs no DDL.
    """
    path = sqlite_file(url)
    if path is None:
        return connect(url)
    engine = create_engine(f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true")
    event.listen(engine, "connect", _sqlite_waits)
    return engine


def _sqlite_waits(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=30000")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")  # a commit survives power loss: nothing lost
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _wal(cursor: Any) -> None:
    """WAL mode, once per file: switching fails at once (no busy wait) while others use it."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


def _clean(value: Any) -> Any:
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def _clean_row(row: Any) -> Any:
    if isinstance(row, dict):
        return {key: _clean(value) for key, value in row.items()}
    if isinstance(row, tuple | list):
        return type(row)(_clean(value) for value in row)
    return row


def _strip_nul(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    """Drop NUL from text parameters (bytes, e.g. the raw messages, pass untouched)."""
    if executemany and isinstance(parameters, list | tuple):
        return statement, type(parameters)(_clean_row(row) for row in parameters)
    return statement, _clean_row(parameters)


def pending_inbound(session: Session) -> list[Inbound]:
    """Messages stored but not yet processed (a crash came between the two steps)."""
    query = select(Inbound).where(Inbound.disposition == Disposition.RECEIVED)
    return list(session.exec(query.order_by(col(Inbound.id))))


def raw_bytes(session: Session, inbound_id: int | None) -> bytes:
    """The bytes of a stored message as received (b"" once erased, or if there are none)."""
    kept = session.get(InboundRaw, inbound_id)
    return kept.raw if kept is not None else b""


_EVENT = Event.__table__  # type: ignore[attr-defined]  # SQLModel's table
_RECORD_EVENT = insert(_EVENT).returning(_EVENT.c.id)


def record_event(
    session: Session, case_id: int, at: datetime, actor: str, action: str, detail: str = ""
) -> None:
    """An event on the case (R8), written at once in SESSION's transaction with its link in
    the case's chain: plain INSERTs, no ORM object (several go with each message)."""
    event_id = (
        session.connection()  # no autoflush: the ORM's changes go in one flush
        .execute(
            _RECORD_EVENT,
            {"case_id": case_id, "at": at, "actor": actor, "action": action, "detail": detail},
        )
        .scalar_one()
    )
    content = chained.event_content(actor, action, detail)
    chain.link(session, case_id, chained.EVENT, event_id, at, action, content)


_CASE_BY_REF = select(Case).where(Case.ref == bindparam("ref"))


def case_by_ref(session: Session, ref: str) -> Case | None:
    return session.exec(_CASE_BY_REF, params={"ref": ref}).first()


_CASES_OF_MESSAGES = union_all(  # prebuilt: asked of every reply
    sql_select(col(Inbound.message_id), col(Inbound.case_id)).where(
        col(Inbound.message_id).in_(bindparam("ids", expanding=True)),
        col(Inbound.case_id).is_not(None),
    ),
    sql_select(col(Outbound.message_id), col(Outbound.case_id)).where(
        col(Outbound.message_id).in_(bindparam("ids", expanding=True)),
        col(Outbound.case_id).is_not(None),
    ),
)


def case_by_message_ids(session: Session, message_ids: Iterable[str]) -> Case | None:
    """The case that any of MESSAGE_IDS (inbound or outbound) belongs to, newest mention first."""
    ids = list(dict.fromkeys(message_ids))
    if not ids:
        return None
    rows: dict[str, int] = {
        message_id: case_id
        for message_id, case_id in session.execute(_CASES_OF_MESSAGES, {"ids": ids})
        if case_id is not None
    }
    for message_id in reversed(ids):  # References run oldest first: prefer the latest
        if message_id in rows:
            return session.get(Case, rows[message_id])
    return None


def next_case_ref(session: Session, fmt: str, year: int) -> str:
    """Issue the next case reference of YEAR, inside the caller's transaction.

    The counter row is locked (two writers: one waits) once per transaction.
    """
    counters: dict[int, RefCounter] = transaction_cache(session, "ref_counters")
    counter = counters.get(year)
    if counter is None:
        counter = session.get(RefCounter, year, with_for_update=True)
        if counter is None:
            counter = RefCounter(year=year, last=0)
        counters[year] = counter
    counter.last += 1
    session.add(counter)
    return fmt.format(year=year, number=counter.last)


_CACHES = "transaction caches"


# a row lock that other daemons (PostgreSQL) pass over rather than wait for; SQLite has one writer
CLAIM = {"skip_locked": True}


def transaction_cache(session: Session, name: str) -> dict[Any, Any]:
    """A dict kept in SESSION for its current transaction only: the next one starts afresh."""
    transaction = session.get_transaction()
    held = session.info.get(_CACHES)
    if held is None or held[0] is not transaction:
        held = session.info[_CACHES] = (transaction, {})
    caches: dict[str, dict[Any, Any]] = held[1]
    return caches.setdefault(name, {})


THREADS = "threads"  # case id -> [(when, ours, Message-ID)] of the customer's thread, sorted


def start_thread(session: Session, case_id: int) -> None:
    """A case opened in this transaction: its thread is known to be empty, no query needed."""
    transaction_cache(session, THREADS)[case_id] = []


def note_in_thread(
    session: Session, case_id: int, message_id: str, at: datetime, ours: bool
) -> None:
    """Keep a thread cached for this transaction up to date with a message just added (the
    customer's, received AT, or OURS to them, dated AT), in its place in time."""
    known = transaction_cache(session, THREADS).get(case_id)
    if known is not None:
        bisect.insort(known, (at, ours, message_id), key=lambda entry: entry[:2])


def get_checkpoint(session: Session, folder: str) -> Checkpoint | None:
    return session.get(Checkpoint, folder)


def set_checkpoint(session: Session, folder: str, uidvalidity: int, last_uid: int) -> None:
    checkpoint = session.get(Checkpoint, folder)
    if checkpoint is None:
        checkpoint = Checkpoint(folder=folder, uidvalidity=uidvalidity, last_uid=last_uid)
    checkpoint.uidvalidity, checkpoint.last_uid = uidvalidity, last_uid
    session.add(checkpoint)


def due_outbound(
    session: Session, now: datetime, after: int = 0, limit: int = 100
) -> list[tuple[int, str | None]]:
    """Queued mail whose next attempt is due, past row AFTER: its id and its case's reference."""
    query = (
        select(col(Outbound.id), col(Case.ref))
        .outerjoin(Case, col(Outbound.case_id) == col(Case.id))
        .where(
            Outbound.status == OutboundStatus.QUEUED,
            col(Outbound.next_attempt_at) <= now,
            col(Outbound.id) > after,
        )
        .order_by(col(Outbound.id))
        .limit(limit)
    )
    return [(row_id, ref) for row_id, ref in session.exec(query) if row_id is not None]


# how every Message-ID of ours starts (mail.compose.new_message_id)
OUR_MESSAGE_IDS = "<mailbot."


def outbound_by_message_ids(session: Session, message_ids: Iterable[str]) -> list[Outbound]:
    ids = [i for i in message_ids if i.startswith(OUR_MESSAGE_IDS)]  # no query for others'
    if not ids:
        return []
    return list(session.exec(select(Outbound).where(col(Outbound.message_id).in_(ids))))


def suppress(
    session: Session, address: str, reason: str, since: datetime, case_id: int | None
) -> None:
    """No more automated mail to ADDRESS (it bounced) until staff write to it."""
    if address in suppressed_addresses(session):
        return
    row = session.get(Suppression, address)  # lifted once, bounced again: the row says so now
    row = row or Suppression(address=address, reason=reason, since=since)
    row.reason, row.since, row.case_id, row.lifted_at, row.lifted_by = (
        reason,
        since,
        case_id,
        None,
        "",
    )
    session.add(row)
    suppressed_addresses(session).add(address)


def suppressed_addresses(session: Session) -> set[str]:
    """The bounced addresses, read once per transaction (a short list, asked of every letter)."""
    cache = transaction_cache(session, "suppressed")
    if "addresses" not in cache:
        cache["addresses"] = set(
            session.exec(
                select(Suppression.address).where(col(Suppression.lifted_at).is_(None))
            ).all()
        )
    addresses: set[str] = cache["addresses"]
    return addresses
