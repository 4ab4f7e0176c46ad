"""Cases as admins and tools read them: JSON and one-line summaries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from mailbot.procedure.details import Detail, missing_details
from mailbot.store.models import Case, Event, Inbound, MessageKind, Outbound, OutboundStatus


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def details_found(case: Case) -> frozenset[Detail]:
    return frozenset(Detail(d) for d in case.details_found.split(",") if d)


def case_json(
    session: Session, case: Case, next_update_due: datetime | None = None
) -> dict[str, Any]:
    """Everything known about CASE, as `mailbot show --json` prints it."""
    inbound = session.exec(
        select(Inbound).where(Inbound.case_id == case.id).order_by(col(Inbound.id))
    ).all()
    outbound = session.exec(
        select(Outbound).where(Outbound.case_id == case.id).order_by(col(Outbound.id))
    ).all()
    events = session.exec(
        select(Event).where(Event.case_id == case.id).order_by(col(Event.id))
    ).all()
    messages = [
        {
            "direction": "in",
            "kind": m.kind,
            "message_id": m.message_id,
            "subject": m.subject,
            "from": m.from_address,
            "at": _iso(m.received_at),
        }
        for m in inbound
    ] + [
        {
            "direction": "out",
            "kind": m.kind,
            "message_id": m.message_id,
            "subject": m.subject,
            "to": m.to_address,
            "status": m.status,  # "held": never sent, the outbound list says why
            "at": _iso(m.sent_at or m.queued_at),
        }
        for m in outbound
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
            }
            for m in outbound
        ],
        "events": [
            {"at": _iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
            for e in events
        ],
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


def case_line(case: Case) -> str:
    return (
        f"{case.ref}  {case.status:<8} {case.level:<11} {_iso(case.received_at)}  "
        f"{case.customer_email}  {case.subject[:60]}"
    )
