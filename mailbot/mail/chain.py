"""The tamper-evident log's arithmetic: each record's digest, its link's hash, a chain checked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

# what a link stands for: a message received, a letter of ours, an event, the chain's start
RECEIVED, LETTER, EVENT, START = "in", "out", "event", "start"
ERASED = "personal data erased"  # the event after which a record's content may be gone
STARTED = "records chained from here"  # the event a migration writes on an existing case


def content_digest(salt: str, content: Mapping[str, object]) -> str:
    """SHA-256 of a record's CONTENT (its words, addresses, bytes' digest) salted with SALT.

    The salt is random per record and dropped when the content is erased: what stays cannot
    be matched against a guessed address or phrase.
    """
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False).replace("\x00", "")
    return hashlib.sha256(f"{salt}\n{canonical}".encode()).hexdigest()


def received_content(
    raw_sha256: str, from_address: str, subject: str, text: str
) -> dict[str, object]:
    """What a message received says (its bytes by their digest, and what we read of them)."""
    return {"raw": raw_sha256, "from": from_address, "subject": subject, "text": text}


def letter_content(sha256: str, to_address: str, subject: str) -> dict[str, object]:
    """What a letter of ours says: the digest of its bytes, to whom, about what."""
    return {"raw": sha256, "to": to_address, "subject": subject}


def event_content(actor: str, action: str, detail: str) -> dict[str, object]:
    """What an event says, and who caused it."""
    return {"actor": actor, "action": action, "detail": detail}


def link_hash(
    previous: str,
    seq: int,
    record: str,
    record_id: int | None,
    at: datetime,
    kind: str,
    digest: str,
) -> str:
    """The hash of a link: the previous link's hash, the record's place, time, kind, digest."""
    moment = at.astimezone(UTC).isoformat()
    fields = [previous, str(seq), record, str(record_id or ""), moment, kind, digest]
    return hashlib.sha256("\n".join(fields).encode()).hexdigest()


def pre_chain_digest(keys: Sequence[tuple[str, int]]) -> str:
    """The digest of the records a case held when its chain started (record, id), sorted:
    a START link's, so that none of them can be added or removed unseen."""
    return hashlib.sha256(json.dumps(sorted(keys)).encode()).hexdigest()


@dataclass(frozen=True)
class Link:
    """One link as stored, and what its record holds now (None: the record is gone)."""

    seq: int
    record: str
    record_id: int | None
    at: datetime
    kind: str
    salt: str
    digest: str
    hash: str
    # the record as it is now: its time, kind and content; None when no such row exists
    now: tuple[datetime, str, Mapping[str, object]] | None


@dataclass(frozen=True)
class Break:
    """Where a chain first fails to hold: the link (or record) and what is wrong."""

    where: str
    why: str

    def describe(self) -> str:
        return f"{self.where}: {self.why}"


def check(links: Sequence[Link], unchained: Sequence[tuple[str, int]]) -> Break | None:
    """The first place where the chain LINKS (in order) does not hold; UNCHAINED are the case's
    records no link names (allowed only as the ones a START link sealed)."""
    previous = ""
    erased_after = _erased_from(links)
    for position, link in enumerate(links, 1):
        where = f"link {link.seq} ({_name(link.record, link.record_id)}, {link.kind})"
        if link.seq != position:
            return Break(f"link {position}", f"missing: the chain jumps to link {link.seq}")
        if link.record == START:
            if position != 1:
                return Break(where, "a chain's start in its middle")
            if pre_chain_digest(unchained) != link.digest:
                return Break(where, "the records before the chain started were changed")
        elif link.now is None:
            return Break(where, "the record is gone")
        else:
            at, kind, content = link.now
            if at != link.at or kind != link.kind:
                return Break(where, f"the record now says {kind} at {at.isoformat()}")
            if link.salt:
                if content_digest(link.salt, content) != link.digest:
                    return Break(where, "the record's content was changed")
            elif position >= erased_after:
                return Break(where, "the content's salt is gone, but no erasure followed")
        fields = (link.seq, link.record, link.record_id, link.at, link.kind, link.digest)
        if link_hash(previous, *fields) != link.hash:
            return Break(where, "the link's hash does not match")
        previous = link.hash
    if unchained and not (links and links[0].record == START):
        record, record_id = sorted(unchained)[0]
        return Break(_name(record, record_id), "a record that is in no chain (added)")
    return None


def _erased_from(links: Sequence[Link]) -> int:
    """The position of the last erasure event (records before it may have lost their salt;
    0: none)."""
    last = 0
    for position, link in enumerate(links, 1):
        if link.record == EVENT and link.kind == ERASED:
            last = position
    return last


def _name(record: str, record_id: int | None) -> str:
    names = {RECEIVED: "message received", LETTER: "letter", EVENT: "event", START: "start"}
    return f"{names.get(record, record)} {record_id}" if record_id else names.get(record, record)
