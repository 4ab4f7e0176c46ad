"""The tamper-evident log's queries: links written with each record, and chains read back."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from mailbot.mail import chain
from mailbot.store import db  # (db writes the links of its events: a module, read at call time)
from mailbot.store.models import Case, ChainLink, Disposition, Event, Inbound, InboundRaw, Outbound

_LINK = ChainLink.__table__  # type: ignore[attr-defined]  # SQLModel's table
_WRITE = insert(_LINK)


def link(
    session: Session,
    case_id: int,
    record: str,
    record_id: int | None,
    at: datetime,
    kind: str,
    content: Mapping[str, object],
) -> None:
    """Add the record to case CASE_ID's chain, in SESSION's transaction.

    The chain's head is read once per transaction and kept: the case is locked for it (its
    row, on PostgreSQL; SQLite has one writer), so no other writer adds to it meanwhile, and
    the unique (case, seq) refuses a fork if one ever tried.
    """
    heads = db.transaction_cache(session, "chain heads")
    if case_id not in heads:
        found = session.exec(
            select(ChainLink.seq, ChainLink.hash)
            .where(ChainLink.case_id == case_id)
            .order_by(col(ChainLink.seq).desc())
            .limit(1)
        ).first()
        heads[case_id] = tuple(found) if found else (0, "")
    seq, previous = heads[case_id]
    seq += 1
    salt = secrets.token_hex(16)
    digest = chain.content_digest(salt, content)
    hashed = chain.link_hash(previous, seq, record, record_id, at, str(kind), digest)
    row = {"case_id": case_id, "seq": seq, "record": record, "record_id": record_id, "at": at}
    row |= {"kind": str(kind), "salt": salt, "digest": digest, "hash": hashed}
    session.connection().execute(_WRITE, row)
    heads[case_id] = (seq, hashed)


def begin(session: Session, case_id: int) -> None:
    """Case CASE_ID was opened in this transaction: its chain is empty, no need to read it."""
    db.transaction_cache(session, "chain heads")[case_id] = (0, "")


def link_received(session: Session, inbound: Inbound) -> None:
    """The message INBOUND, filed on its case just now, added to that case's chain."""
    assert inbound.case_id is not None and inbound.id is not None
    content = chain.received_content(
        inbound.sha256, inbound.from_address, inbound.subject, inbound.text
    )
    at, kind = inbound.received_at, str(inbound.kind or "")
    link(session, inbound.case_id, chain.RECEIVED, inbound.id, at, kind, content)


def forget_salts(session: Session, case_id: int | None) -> None:
    """Case CASE_ID's content erased: its links keep their digests, the salts go (what is left
    can no longer be matched against a guess)."""
    session.execute(update(ChainLink).where(col(ChainLink.case_id) == case_id).values(salt=""))


def chained_case_ids(session: Session, ref: str | None) -> list[tuple[int, str]]:
    """The cases to verify (id, reference): REF's, or all of them."""
    query = select(Case.id, Case.ref).order_by(col(Case.id))
    if ref is not None:
        query = query.where(Case.ref == ref)
    return [(case_id, found) for case_id, found in session.exec(query) if case_id is not None]


def case_chain(session: Session, case_id: int) -> tuple[list[chain.Link], list[tuple[str, int]]]:
    """Case CASE_ID's links with what their records hold now, and the records no link names."""
    now: dict[tuple[str, int], tuple[datetime, str, Mapping[str, object]]] = {}
    received = session.exec(
        select(Inbound, InboundRaw.raw)
        .outerjoin(InboundRaw, col(InboundRaw.inbound_id) == col(Inbound.id))
        .where(Inbound.case_id == case_id, Inbound.disposition == Disposition.CASE)
    )
    for message, raw in received:
        assert message.id is not None
        content = chain.received_content(
            _sha256(raw),
            message.from_address,
            message.subject,
            message.text,
        )
        now[chain.RECEIVED, message.id] = (message.received_at, str(message.kind or ""), content)
    for letter in session.exec(select(Outbound).where(Outbound.case_id == case_id)):
        assert letter.id is not None
        content = chain.letter_content(_sha256(letter.raw), letter.to_address, letter.subject)
        now[chain.LETTER, letter.id] = (letter.queued_at, str(letter.kind), content)
    for event in session.exec(select(Event).where(Event.case_id == case_id)):
        assert event.id is not None
        content = chain.event_content(event.actor, event.action, event.detail)
        now[chain.EVENT, event.id] = (event.at, event.action, content)
    rows = session.exec(
        select(ChainLink).where(ChainLink.case_id == case_id).order_by(col(ChainLink.seq))
    )
    links = []
    for row in rows:
        key = (row.record, row.record_id or 0)
        stored = (row.seq, row.record, row.record_id, row.at, row.kind, row.salt, row.digest)
        links.append(chain.Link(*stored, row.hash, now.pop(key, None)))
    return links, sorted(now)


def _sha256(raw: object) -> str:
    """The SHA-256 of stored bytes, whatever was put in their place (SQLite keeps any type: a
    changed letter may come back as text, and must still be told from the original)."""
    data = raw if isinstance(raw, bytes) else str(raw or "").encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()
