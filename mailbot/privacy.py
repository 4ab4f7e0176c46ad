"""The customer's personal data under UK GDPR: subject access, erasure, and the retention hold."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from mailbot.procedure.calendar import add_months
from mailbot.procedure.transitions import RULE
from mailbot.store import db
from mailbot.store.casebook import case_events, case_letters, case_messages
from mailbot.store.chain import forget_salts
from mailbot.store.db import Session
from mailbot.store.models import Case, CaseStatus, Inbound, Outbound
from mailbot.store.personal import (
    cases_to_purge,
    customer_cases,
    erase_bytes,
    forget_bounces,
    forget_case_bounces,
    held_on_case,
    last_event_of,
    lock_cases,
    received_with_bytes,
    uncased_letters,
    uncased_received,
)

log = logging.getLogger("mailbot")

ERASED = "personal data erased"
# the letters after which the customer may still go to the ADR scheme: the hold counts from them
ADR_LETTERS = ("adr notice sent", "deadlock letter sent", "deadlock letter copy sent")
# what the rules recorded in their own words: kept, the figures read them (report.py)
RULE_DETAILS = frozenset(
    {"update sent", "adr notice sent", "adr notice withheld", "first response overdue", "escalated"}
)


class Refusal(Exception):
    """The operation is refused (exit 2); the message says why, on one line."""


# -- subject access ----------------------------------------------------------------------------

README = """\
Everything mailbot holds about {email}, exported {now} (a subject access request).

One folder per complaint (case), named by its reference:

  case.json    the case as mailbot keeps it: its dates, timers, decisions and outcome,
               every message in and out with what mailbot read of it, and its events
               (exactly what `mailbot show REFERENCE --json` prints)
  events.json  the case's history: every decision, letter and timer, with its time and
               who caused it (the "events" of case.json, on their own)
  messages/    every message received and sent on the case, as the raw e-mail (.eml) it
               was, attachments included; numbered in time order, "in" for received,
               "out" for sent by us, then what it was (complaint, acknowledgement ...).
               Any e-mail program opens them.

{cases}
"""


def export(
    session: Session,
    email: str,
    folder: Path,
    now: datetime,
    describe: Callable[[Session, Case], dict[str, Any]],
) -> list[Path]:
    """Write everything held about EMAIL's cases into FOLDER (new or empty); DESCRIBE is what
    `mailbot show --json` prints of a case. Returns the files written."""
    refuse_unless_empty(folder)
    cases = customer_cases(session, email)
    if not cases:
        raise Refusal(f"no case of {email}")
    written: list[Path] = []
    write = partial(write_file, written)

    listing = []
    for case in cases:
        here = folder / case.ref
        data = describe(session, case)
        write(here / "case.json", (json.dumps(data, indent=2) + "\n").encode())
        write(here / "events.json", (json.dumps(data["events"], indent=2) + "\n").encode())
        messages = raw_messages(session, case)
        for number, (_, direction, kind, raw, _id) in enumerate(messages, 1):
            write(here / "messages" / f"{number:03d}-{direction}-{kind}.eml", raw)
        listing.append(
            f"{case.ref}: received {case.received_at:%Y-%m-%d}, {case.status}, "
            f"{len(messages)} message(s)"
        )
    text = README.format(email=email, now=now.isoformat(), cases="\n".join(listing))
    write(folder / "README.txt", text.encode())
    return written


def refuse_unless_empty(folder: Path) -> None:
    """Refused (exit 2) unless FOLDER is a new or empty directory: nothing is overwritten."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise Refusal(f"{folder} is not an empty directory: give a new or empty one")


def write_file(written: list[Path], path: Path, data: bytes) -> None:
    """DATA into PATH (its directories made), and PATH added to WRITTEN."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path)


def raw_messages(session: Session, case: Case) -> list[tuple[datetime, str, str, bytes, str]]:
    """The case's raw messages in time order: (when, "in"/"out", kind, bytes, Message-ID)."""
    found: list[tuple[datetime, str, str, bytes, str]] = [
        (m.received_at, "in", str(m.kind or "message"), raw, m.message_id)
        for m, raw in received_with_bytes(session, case.id)
        if raw
    ]
    found += [
        (m.sent_at or m.queued_at, "out", str(m.kind), m.raw, m.message_id)
        for m in case_letters(session, case.id)
        if m.raw  # a letter to an address no mail can go to was never written
    ]
    return sorted(found, key=lambda m: m[0])


# -- the hold and erasure ------------------------------------------------------------------------


def held(session: Session, case: Case, hold_months: int, now: datetime) -> str:
    """Why CASE's personal data must be kept at NOW ("" if it may be erased): the case is
    open, or within HOLD_MONTHS of its resolution or its last ADR or deadlock letter."""
    if case.status == CaseStatus.OPEN:
        return f"{case.ref} is open"
    assert case.resolved_at is not None
    last, since = case.resolved_at, "its resolution"
    letter = last_event_of(session, case.id, ADR_LETTERS)
    if letter is not None and letter.at > last:
        last, since = letter.at, f"its last ADR or deadlock letter ({letter.action})"
    until = add_months(last, hold_months)
    if now < until:
        return (
            f"{case.ref} is held until {until:%Y-%m-%d} ([retention] hold_months = "
            f"{hold_months} after {since} on {last:%Y-%m-%d})"
        )
    return ""


@dataclass(frozen=True)
class Erasure:
    """What erasing a case removes (or, on a dry run, would)."""

    ref: str
    inbound: int
    outbound: int
    attachments: int

    def describe(self) -> str:
        return (
            f"{self.inbound} message(s) received, {self.outbound} sent, "
            f"{self.attachments} attachment(s)"
        )


def erasure(session: Session, case: Case) -> Erasure:
    """What erasing CASE would remove."""
    return Erasure(case.ref, *held_on_case(session, case.id))


def erase_case(
    session: Session, case: Case, now: datetime, staff: Iterable[str], why: str
) -> Erasure:
    """Remove the personal data from CASE, in the caller's transaction: every message's bytes,
    texts, names and addresses, the attachments, the customer's words in events; the case's
    reference, dates, timers and outcome stay, with an event saying so (STAFF: staff's
    addresses, kept as the actors of what they did)."""
    done = erasure(session, case)
    customer = case.addresses()
    kept_actors = {a.lower() for a in staff} | {RULE, "admin"}
    inbound_ids = []
    for message in case_messages(session, case.id):
        inbound_ids.append(message.id)
        _erase_inbound(message)
        session.add(message)
    if inbound_ids:
        erase_bytes(session, inbound_ids)
    for letter in case_letters(session, case.id):
        _erase_outbound(letter, customer)
        session.add(letter)
    for event in case_events(session, case.id):
        if event.actor.lower() not in kept_actors:
            event.actor = "customer" if event.actor.lower() in customer else "third party"
        if not (event.actor == RULE and event.action in RULE_DETAILS):
            event.detail = ""
        session.add(event)
    # its bounce is the customer's address too (and a letter to it would only bounce again)
    forget_case_bounces(session, case.id)
    case.customer_email = case.customer_addresses = case.customer_name = case.subject = ""
    case.resolution_summary = case.deadlock_position = case.remedy = ""
    case.needs = ""  # the support needs and their notes: health, disability, circumstances
    case.personal_data_erased_at = now
    session.add(case)
    forget_salts(session, case.id)  # the chain keeps each record's digest, not the means to
    assert case.id is not None  # match it against a guess; the erasure's own event is linked
    db.record_event(session, case.id, now, "admin", ERASED, why)
    return done


def _erase_inbound(message: Inbound) -> None:
    message.text = message.subject = message.from_address = message.from_name = ""
    message.in_reply_to = message.references = message.reason = ""


def _erase_outbound(letter: Outbound, customer: set[str]) -> None:
    letter.raw = b""
    letter.subject = letter.smtp_reply = letter.last_error = ""
    if letter.to_address in customer:
        letter.to_address = ""


def erase_uncased(session: Session, addresses: set[str]) -> tuple[int, int]:
    """Erase the messages from and to ADDRESSES that are on no case (a robot's, a letter
    about a message too large), and their bounce suppressions: (received, sent) erased."""
    inbound = uncased_received(session, addresses)
    for message in inbound:
        _erase_inbound(message)
        session.add(message)
    ids = [m.id for m in inbound]
    if ids:
        erase_bytes(session, ids)
    outbound = uncased_letters(session, addresses)
    for letter in outbound:
        _erase_outbound(letter, addresses)
        session.add(letter)
    forget_bounces(session, addresses)
    return len(inbound), len(outbound)


def erase_customer(
    session: Session,
    email: str,
    now: datetime,
    hold_months: int,
    staff: Iterable[str],
    dry_run: bool = False,
) -> list[Erasure]:
    """Erase EMAIL's personal data from all their cases (and their mail on no case), in the
    caller's transaction; refused if any case is open or held. DRY_RUN: only say what."""
    cases = customer_cases(session, email)
    if not cases:
        raise Refusal(f"no case of {email}")
    lock_cases(session, cases)  # PostgreSQL: nobody reopens one meanwhile
    reasons = [why for why in (held(session, c, hold_months, now) for c in cases) if why]
    if reasons:
        raise Refusal(f"not erased: {'; '.join(reasons)}")
    addresses = set().union(*(c.addresses() for c in cases))
    done = []
    for case in cases:
        if dry_run:
            done.append(erasure(session, case))
            log.info("erase --dry-run: %s: would erase %s", case.ref, done[-1].describe())
            continue
        done.append(erase_case(session, case, now, staff, "mailbot erase --customer"))
        log.info("erase: %s: personal data erased: %s", case.ref, done[-1].describe())
    if not dry_run:
        inbound, outbound = erase_uncased(session, addresses)
        if inbound or outbound:
            log.info("erase: on no case: %d message(s) received, %d sent erased", inbound, outbound)
    return done


def purge(
    session: Session,
    closed_before: datetime,
    now: datetime,
    hold_months: int,
    staff: Iterable[str],
    dry_run: bool = False,
) -> list[Erasure]:
    """Erase the personal data of every case resolved before CLOSED_BEFORE and outside the
    hold, in the caller's transaction; each case held is said and kept."""
    cases = cases_to_purge(session, closed_before)
    done = []
    why = f"mailbot purge --closed-before {closed_before:%Y-%m-%d}"
    for case in cases:
        reason = held(session, case, hold_months, now)
        if reason:
            log.info("purge: %s: kept: %s", case.ref, reason.removeprefix(f"{case.ref} "))
        elif dry_run:
            done.append(erasure(session, case))
            log.info("purge --dry-run: %s: would erase %s", case.ref, done[-1].describe())
        else:
            done.append(erase_case(session, case, now, staff, why))
            log.info("purge: %s: personal data erased: %s", case.ref, done[-1].describe())
    return done
