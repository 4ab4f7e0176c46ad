"""The held-list letter: what was held since the last, to the team leaders, at most twice a day."""

from __future__ import annotations

import logging
from datetime import datetime, time
from typing import Any

from mailbot.config import Settings
from mailbot.correspondence import shortened, team_name
from mailbot.mail.compose import Letter
from mailbot.outbox import OutboxWriter
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.store.connection import claimed_once
from mailbot.store.db import Engine, Session
from mailbot.store.held import claim_list, list_claimed, unlisted_held
from mailbot.store.models import Inbound, MessageKind
from mailbot.templating import Templates

log = logging.getLogger("mailbot")

TEMPLATE = "held_list_staff"


def list_due(now: datetime, calendar: BusinessCalendar, cutoff: time) -> datetime | None:
    """The latest time a list was due by NOW: a working day's opening or its update cut-off
    (None: none yet today, or no working day). Only today's, so lists missed while no daemon
    ran are not sent late in a burst."""
    today = now.astimezone(calendar.zone).date()
    if not calendar.is_working_day(today):
        return None
    times = [datetime.combine(today, at, calendar.zone) for at in (calendar.opening, cutoff)]
    past = [at for at in times if at <= now]
    return max(past) if past else None


def send_held_list(
    engine: Engine,
    settings: Settings,
    calendar: BusinessCalendar,
    templates: Templates,
    outbox: OutboxWriter,
    now: datetime,
) -> int:
    """Queue the list of messages held since the last one if its time has come and nobody
    queued it: the letters queued. The time's row is the claim (as the weekly digest's),
    taken even when nothing was held, so a list goes at most at each opening and cut-off."""
    due = list_due(now, calendar, settings.procedure.cutoff)
    if due is None:
        return 0
    with Session(engine) as session:
        if list_claimed(session, due):
            return 0
        listed = unlisted_held(session)

        def claim_and_queue() -> int:
            claim_list(session, due, now, listed)
            return _queue(session, settings, templates, outbox, listed)

        queued = claimed_once(session, claim_and_queue)
    if queued:
        log.info("held list: %d message(s) to %d team leader(s)", len(listed), queued)
    return queued


def _queue(
    session: Session,
    settings: Settings,
    templates: Templates,
    outbox: OutboxWriter,
    listed: list[Inbound],
) -> int:
    if not listed:
        return 0
    context = held_context(listed, settings.mailbox.held_folder)
    text = templates.render(TEMPLATE, context)
    leaders = settings.staff_with_role("team_leader") or settings.staff_with_role("manager")
    subject = f"Held, not answered: {len(listed)} message(s) to release or leave"
    for member in leaders:
        letter = Letter(
            to_address=member.email,
            to_name=member.name,
            subject=subject,
            text=text,
            reply_to=settings.smtp.from_address,
            from_name=team_name(settings),
        )
        outbox.queue(session, None, MessageKind.HELD_LIST, letter)
    return len(leaders)


def held_context(listed: list[Inbound], folder: str) -> dict[str, Any]:
    """What the held-list template reads: each message's id, sender, subject, first words and
    reason."""
    return {
        "folder": folder,
        "needs": (),  # (the first lines of a staff letter: a list is about no one customer)
        "support": (),
        "messages": [
            {
                "id": message.id,
                "sender": message.from_address or "(no sender)",
                "subject": message.subject or "(no subject)",
                "words": shortened(message.text, 160) or "(no text)",
                "reason": message.reason,
                "received": message.received_at,
            }
            for message in listed
        ],
    }
