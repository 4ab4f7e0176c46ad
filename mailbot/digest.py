"""The weekly digest: at the week's opening, last week's figures go to the managers, once."""

from __future__ import annotations

import html
import logging
from datetime import date, datetime, time, timedelta
from email.utils import make_msgid

from mailbot import report
from mailbot.config import Settings
from mailbot.mail.compose import Letter
from mailbot.outbox import OutboxWriter
from mailbot.procedure import rules
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.store.connection import claimed_once
from mailbot.store.db import Engine, Session
from mailbot.store.models import MessageKind
from mailbot.store.reports import claim_digest, digest_queued

log = logging.getLogger("mailbot")


def week_of(now: datetime, calendar: BusinessCalendar) -> date:
    """The Monday of NOW's week, in the business time zone."""
    today = now.astimezone(calendar.zone).date()
    return today - timedelta(days=today.weekday())


def due_at(monday: date, calendar: BusinessCalendar) -> datetime:
    """When the week of MONDAY's digest goes: its first opening (Monday's, or after a bank
    holiday the next working day's)."""
    return calendar.next_opening(datetime.combine(monday, time(), calendar.zone))


def send_weekly_digest(
    engine: Engine,
    settings: Settings,
    calendar: BusinessCalendar,
    policy: rules.TimeLimits,
    outbox: OutboxWriter,
    now: datetime,
) -> int:
    """Queue this week's digest if its time has come and nobody queued it: the letters queued.

    Only the current week's is ever sent, so weeks missed while no daemon ran are not sent
    late in a burst. The week's row is the claim: on PostgreSQL a second daemon's insert
    waits for the first's commit, then fails, and queues nothing.
    """
    monday = week_of(now, calendar)
    if now < due_at(monday, calendar):
        return 0
    with Session(engine) as session:
        if digest_queued(session, monday):
            return 0

        def claim_and_queue() -> int:
            claim_digest(session, monday, now)
            return _queue(session, settings, calendar, policy, outbox, now, monday)

        queued = claimed_once(session, claim_and_queue)
        if not queued:
            return 0
    log.info("weekly digest for the week of %s queued to %d manager(s)", monday, queued)
    return queued


def _queue(
    session: Session,
    settings: Settings,
    calendar: BusinessCalendar,
    policy: rules.TimeLimits,
    outbox: OutboxWriter,
    now: datetime,
    monday: date,
) -> int:
    weekly = report.build_report(
        session,
        report.Period(monday - timedelta(weeks=1), monday - timedelta(days=1)),
        now,
        calendar,
        policy,
        settings.procedure.adr_wait_weeks,
    )
    charted = report.build_report(
        session,
        report.Period(
            monday - timedelta(weeks=settings.reports.chart_weeks), monday - timedelta(days=1)
        ),
        now,
        calendar,
        policy,
        settings.procedure.adr_wait_weeks,
    )
    png = report.chart(charted.figures["by_week"], "png")
    subject = f"Complaints: the week of {report.period_words(weekly.period)}"
    text = digest_text(weekly, calendar, settings.reports.chart_weeks)
    managers = settings.staff_with_role("manager") or settings.staff_with_role("team_leader")
    domain = settings.smtp.from_address.rpartition("@")[2]
    for member in managers:
        cid = make_msgid("chart", domain)[1:-1]
        letter = Letter(
            to_address=member.email,
            to_name=member.name,
            subject=subject,
            text=text,
            html=digest_html(weekly, calendar, cid, settings.reports.chart_weeks),
            image=(cid, png),
        )
        outbox.queue(session, None, MessageKind.WEEKLY_DIGEST, letter)
    return len(managers)


def digest_text(weekly: report.Report, calendar: BusinessCalendar, weeks: int) -> str:
    lines = [
        f"Complaints received {report.period_words(weekly.period)}, and what became of them "
        "by the week's end:",
        "",
    ]
    rows = report.figure_lines(weekly.figures)
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    lines += ["", report.wait_words(weekly.figures) + "."]
    lines += ["", f"The chart (in the HTML part) shows the last {weeks} weeks."]
    lines += ["", f"Cases that need attention now: {len(weekly.attention) or 'none'}"]
    lines += [f"  {report.attention_words(a, calendar)}" for a in weekly.attention]
    lines += ["", "mailbot report --format html gives any period's figures."]
    return "\n".join(lines) + "\n"


def digest_html(weekly: report.Report, calendar: BusinessCalendar, cid: str, weeks: int) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(label)}</td><td align='right'>{esc(value)}</td></tr>"
        for label, value in report.figure_lines(weekly.figures)
    )
    attention = "".join(
        f"<li>{esc(report.attention_words(a, calendar))}</li>" for a in weekly.attention
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"></head>
<body style="font-family: sans-serif">
<p>Complaints received {esc(report.period_words(weekly.period))}, and what became of them
by the week's end:</p>
<table cellpadding="4">{rows}</table>
<p>{esc(report.wait_words(weekly.figures))}.</p>
<p>Complaints received and first responses on time, the last {weeks} weeks:</p>
<p><img src="cid:{esc(cid)}" alt="chart of complaints received and first responses on time"
 width="800" height="320"></p>
<p>Cases that need attention now: {len(weekly.attention) or "none"}</p>
<ul>{attention}</ul>
</body></html>
"""
