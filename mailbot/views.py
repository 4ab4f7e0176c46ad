"""Cases as admins and tools read them: JSON and one-line summaries."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mailbot.mail.parse import header_block, parse_message
from mailbot.procedure.details import Detail, missing_details
from mailbot.store.casebook import (
    case_events,
    case_letters,
    case_messages,
    merged_into,
    message_attachments,
)
from mailbot.store.cases import needs_of
from mailbot.store.db import Session
from mailbot.store.models import Case, Inbound, MessageKind, Outbound, OutboundStatus


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def details_found(case: Case) -> frozenset[Detail]:
    return frozenset(Detail(d) for d in case.details_found.split(",") if d)


def case_json(
    session: Session, case: Case, next_update_due: datetime | None = None
) -> dict[str, Any]:
    """Everything known about CASE, as `mailbot show --json` prints it: the messages of the
    cases merged into it too, each saying which case it came on."""
    joined = {c.id: c.ref for c in merged_into(session, case.ref)}
    on = {case.id: case.ref, **joined}
    inbound = [m for case_id in on for m in case_messages(session, case_id)]
    outbound = case_letters(session, case.id)
    letters = outbound + [m for case_id in joined for m in case_letters(session, case_id)]
    events = case_events(session, case.id)
    files = _attachments(session, [m.id for m in inbound if m.id is not None])
    messages: list[dict[str, Any]] = [
        {
            "direction": "in",
            "case": on[m.case_id],
            "kind": m.kind,
            "message_id": m.message_id,
            "subject": m.subject,
            "from": {"address": m.from_address, "name": m.from_name},
            "at": _iso(m.received_at),
            "text": m.text,  # what mailbot read: every text part, HTML made plain
            "attachments": files.get(m.id, []),
        }
        for m in inbound
    ] + [
        {
            "direction": "out",
            "case": on[m.case_id],
            "kind": m.kind,
            "message_id": m.message_id,
            "subject": m.subject,
            "to": m.to_address,
            "status": m.status,  # "held": never sent, the outbound list says why
            "at": _iso(m.sent_at or m.queued_at),
        }
        for m in letters
    ]
    messages.sort(key=lambda m: m["at"] or "")
    return {
        "ref": case.ref,
        "status": case.status,
        "level": case.level,
        "customer_email": case.customer_email,
        # every address whose mail is the customer's: where letters go first, then the others
        "customer_addresses": [
            case.customer_email,
            *sorted(case.addresses() - {case.customer_email}),
        ],
        "customer_name": case.customer_name,
        "subject": case.subject,
        "received_at": _iso(case.received_at),
        "first_response_due": _iso(case.first_response_due),
        "adr_date": _iso(case.adr_date),
        "details_found": sorted(details_found(case)),
        "missing_details": [str(d) for d in missing_details(details_found(case))],
        "update_interval_days": case.update_interval_days,
        "update_interval_agreed_by": case.update_interval_agreed_by or None,
        "flags": sorted(case.flag_set()),
        "resolved_at": _iso(case.resolved_at),
        "resolution_summary": case.resolution_summary or None,
        "escalated_at": _iso(case.escalated_at),
        "first_staff_reply_at": _iso(case.first_staff_reply_at),
        "reopened_from": case.reopened_from or None,
        "merged_into": case.merged_into or None,  # status "merged": the case that carries it on
        "merged_cases": sorted(joined.values()),  # the cases merged into this one
        "adr_scheme": adr_scheme_json(case),
        # support needs staff recorded (#needs, #support), oldest first
        "needs": [
            {
                "need": n.need,
                "note": n.note,
                "recorded_by": n.recorded_by,
                "recorded_at": _iso(n.recorded_at),
            }
            for n in needs_of(case)
        ],
        "subject_access_request": subject_access_json(case),
        "next_due_at": _iso(case.next_due_at),
        "set_aside_reason": case.set_aside_reason or None,  # the tick stopped working it
        "next_update_due": _iso(next_update_due),
        "adr_notice_due": _iso(case.adr_date),
        "adr_notice_sent_at": _iso(case.adr_notice_sent_at),
        "adr_notice_decision": case.adr_notice_decision or None,
        "deadlock_requested_at": _iso(case.deadlock_requested_at),
        "deadlock_sent_at": _iso(case.deadlock_sent_at),
        "deadlock_refused_at": _iso(case.deadlock_refused_at),
        "deadlock_position": case.deadlock_position or None,
        "deadlock_letter_held_back": deadlock_held_back(case, outbound),
        "first_response_overdue_sent_at": _iso(case.first_response_overdue_sent_at),
        "by_post_due": [k for k in case.by_post_due.split(",") if k],  # bounced ADR letters
        "messages": messages,
        "outbound": [
            {
                "kind": m.kind,
                "to": m.to_address,
                "status": m.status,
                "message_id": m.message_id,
                "queued_at": _iso(m.queued_at),
                "sent_at": _iso(m.sent_at),
                "attempts": m.attempts,
                "smtp_reply": m.smtp_reply,
                "last_error": m.last_error,
                "sha256": m.sha256,  # of the exact bytes given to the SMTP server
                "undelivered_at": _iso(m.undelivered_at),  # a bounce named it
                "undelivered_reason": m.undelivered_reason or None,
            }
            for m in outbound
        ],
        "events": [
            {"at": _iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
            for e in events
        ],
    }


def subject_access_json(case: Case) -> dict[str, Any] | None:
    """The case's subject access request (UK GDPR Art. 12(3)), or None: its clock."""
    if case.sar_requested_at is None:
        return None
    return {
        "requested_at": _iso(case.sar_requested_at),
        "due": case.sar_due.isoformat() if case.sar_due else None,
        "extended_at": _iso(case.sar_extended_at),
        "reminded": case.sar_told or None,  # the last reminder the DPO had: week, day, late
        "answered_at": _iso(case.sar_done_at),
    }


def adr_scheme_json(case: Case) -> dict[str, Any] | None:
    """What the ADR scheme has of CASE (#adr, #adr-outcome, #remedy-done), or None."""
    if case.adr_referred_at is None:
        return None
    return {
        "reference": case.adr_scheme_ref,
        "referred_at": _iso(case.adr_referred_at),
        "case_file_due": case.adr_case_file_due.isoformat() if case.adr_case_file_due else None,
        "case_file_reminded_at": _iso(case.adr_case_file_reminded_at),
        "outcome": case.adr_outcome or None,
        "outcome_at": _iso(case.adr_outcome_at),
        "remedy": case.remedy or None,
        "remedy_due": case.remedy_due.isoformat() if case.remedy_due else None,
        "remedy_reminded": case.remedy_told or None,
        "remedy_done_at": _iso(case.remedy_done_at),
    }


def deadlock_held_back(case: Case, outbound: Sequence[Outbound]) -> str | None:
    """Why the case's deadlock letter was held back, if it was written but never went."""
    if case.deadlock_sent_at is not None or not case.deadlock_position:
        return None
    held = [
        m
        for m in outbound
        if m.kind == MessageKind.DEADLOCK_LETTER and m.status == OutboundStatus.HELD
    ]
    return held[-1].last_error if held else None


def _attachments(
    session: Session, inbound_ids: list[int]
) -> dict[int | None, list[dict[str, Any]]]:
    """Each message's attachments as stored, with the SHA-256 of the bytes kept."""
    found: dict[int | None, list[dict[str, Any]]] = {}
    for a in message_attachments(session, inbound_ids):
        found.setdefault(a.inbound_id, []).append(
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": hashlib.sha256(a.payload).hexdigest(),
            }
        )
    return found


def quarantined_json(row: Inbound, raw: Callable[[], bytes]) -> dict[str, Any]:
    """A set-aside message (RAW reads its bytes), as `mailbot quarantine list --json`
    prints it.

    One set aside because its processing failed was never recorded as read (the failed
    transaction took that with it): its sender and subject come from its header block.
    """
    address, name, subject = row.from_address, row.from_name, row.subject
    if not row.parser:
        head = parse_message(header_block(raw()), row.content_sha256)
        address, name = (head.sender.email, head.sender.name) if head.sender else ("", "")
        subject = head.subject
    sender = {"address": address, "name": name} if address else None
    return {
        "id": row.id,
        "received_at": _iso(row.received_at),
        "size": row.size,
        "source": row.source,
        "sender": sender,
        "subject": subject,
        "reason": row.reason,
    }


def case_line(case: Case) -> str:
    return (
        f"{case.ref}  {case.status:<15} {case.level:<11} {_iso(case.received_at)}  "
        f"{case.customer_email}  {case.subject[:60]}"
    )


def held_json(row: Inbound) -> dict[str, Any]:
    """A held message, as `mailbot held list --json` prints it."""
    return {
        "id": row.id,
        "from": row.from_address,
        "subject": row.subject,
        "received_at": _iso(row.received_at),
        "reason": row.reason,
    }
