"""The complaints manager's report: a period's cases, counted from what their records say."""

from __future__ import annotations

import csv
import html
import io
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from mailbot.mail.spam import verdict_of
from mailbot.procedure import rules
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.transitions import (
    ADR_OUTCOME,
    ADR_REFERRED,
    CHASED,
    HELD_LETTERS,
    MERGED_INTO,
    NOT_A_COMPLAINT,
    REMEDY_LATE,
    SAR_ANSWERED_LATE,
    SAR_ANSWERED_ON_TIME,
    SAR_EXTENDED,
    SAR_RECEIVED,
    SENT_BY_POST,
    UNDELIVERED,
)
from mailbot.store.cases import state_of
from mailbot.store.db import Session
from mailbot.store.held import held_received_between
from mailbot.store.models import Case, Event, MessageKind
from mailbot.store.reports import cases_received_between, events_of_cases, open_cases

# the events the figures count, as the procedure records them (transitions.py)
RESOLVED, REOPENED, ESCALATED = "resolved", "reopened", "escalated"
UPDATE_SENT = "update sent"
ADR_SENT, ADR_WITHHELD = "adr notice sent", "adr notice withheld"
ADR_HELD = f"{HELD_LETTERS[MessageKind.ADR_NOTICE]} held back"
DEADLOCK_REQUESTED, DEADLOCK_REFUSED = "deadlock letter requested", "deadlock letter refused"
DEADLOCK_SENT = "deadlock letter sent"
DEADLOCK_HELD = f"{HELD_LETTERS[MessageKind.DEADLOCK_LETTER]} held back"
COUNTED = frozenset(
    {
        RESOLVED,
        REOPENED,
        ESCALATED,
        UPDATE_SENT,
        ADR_SENT,
        ADR_WITHHELD,
        ADR_HELD,
        DEADLOCK_REQUESTED,
        DEADLOCK_REFUSED,
        DEADLOCK_SENT,
        DEADLOCK_HELD,
        CHASED,
        NOT_A_COMPLAINT,
        MERGED_INTO,
        ADR_REFERRED,
        ADR_OUTCOME,
        REMEDY_LATE,
        SAR_RECEIVED,
        SAR_ANSWERED_ON_TIME,
        SAR_ANSWERED_LATE,
        SAR_EXTENDED,
        UNDELIVERED,
        SENT_BY_POST,
    }
)
# R5's exceptions, as "adr notice withheld" names them ("not sent: the case is out of scope")
WITHHELD_REASONS = tuple(rules.WITHHELD)
# the scheme's decisions, as the case keeps them
ADR_OUTCOMES = ("upheld", "partly", "not_upheld")
# how a case stood at the horizon; the last two are not complaints received
OUTCOMES = ("open", "final_response", "with_adr", "resolved", "not_a_complaint", "merged")
APART = ("not_a_complaint", "merged")
ATTENTION_ADR_DAYS = 7  # an ADR date this close is one the manager should see coming


@dataclass(frozen=True)
class Period:
    """Days FIRST to LAST, both included, in the business time zone."""

    first: date
    last: date

    def bounds(self, calendar: BusinessCalendar) -> tuple[datetime, datetime]:
        """The period as instants: from the first day's midnight to the one after the last."""
        zone = calendar.zone
        end = self.last + timedelta(days=1)
        return datetime.combine(self.first, time(), zone), datetime.combine(end, time(), zone)

    def weeks(self) -> list[date]:
        """The Mondays of the weeks the period touches."""
        monday = self.first - timedelta(days=self.first.weekday())
        mondays = []
        while monday <= self.last:
            mondays.append(monday)
            monday += timedelta(weeks=1)
        return mondays


def last_month(today: date) -> Period:
    """The calendar month before TODAY's."""
    last = today.replace(day=1) - timedelta(days=1)
    return Period(last.replace(day=1), last)


def last_week(today: date) -> Period:
    """Monday to Sunday of the week before TODAY's."""
    monday = today - timedelta(days=today.weekday(), weeks=1)
    return Period(monday, monday + timedelta(days=6))


@dataclass(frozen=True)
class CaseFigures:
    """One case as the report counts it, from its row and its events up to the horizon."""

    ref: str
    received_at: datetime
    first_response_due: datetime
    first_staff_reply_at: datetime | None
    first_response: str  # "on_time", "late" or "pending"
    level: str
    escalated_at: datetime | None
    updates_sent: int
    adr_date: datetime
    adr_notice: str  # "", "sent", "held back", or "withheld: REASON"
    deadlock_requests: int
    deadlock_sent_at: datetime | None
    deadlock_refusals: int
    resolved_at: datetime | None  # resolved by the horizon (the latest resolution then)
    working_days_to_resolve: float | None
    personal_data_erased: bool
    outcome: str = "open"  # one of OUTCOMES: where the case stood at the horizon
    adr_referred: bool = False
    adr_outcome: str = ""  # one of ADR_OUTCOMES, once the scheme decided
    remedy_late: bool = False
    # subject access requests: received, answered on time, answered late, extended
    subject_access: tuple[int, int, int, int] = (0, 0, 0, 0)
    adr_letters_undelivered: int = 0  # ADR notices and deadlock letters that bounced
    adr_letters_by_post: int = 0  # and went by post instead (#sent-by-post)

    @property
    def complaint(self) -> bool:
        """Counted as a complaint received (not spam, not a duplicate merged away)."""
        return self.outcome not in APART

    @property
    def withheld_reason(self) -> str | None:
        withheld = self.adr_notice.startswith("withheld: ")
        return self.adr_notice.removeprefix("withheld: ") if withheld else None


def case_figures(
    case: Case, events: Sequence[Event], horizon: datetime, calendar: BusinessCalendar
) -> CaseFigures:
    """CASE's figures as its EVENTS (oldest first) say they stood at HORIZON."""
    before = [e for e in events if e.at < horizon]

    def count(action: str) -> int:
        return sum(1 for e in before if e.action == action)

    def latest(*actions: str) -> Event | None:
        return next((e for e in reversed(before) if e.action in actions), None)

    reply = case.first_staff_reply_at
    reply = reply if reply is not None and reply < horizon else None
    if reply is not None:
        first_response = "on_time" if reply <= case.first_response_due else "late"
    else:
        first_response = "late" if case.first_response_due <= horizon else "pending"
    resolution = latest(RESOLVED, REOPENED)
    resolved_at = resolution.at if resolution and resolution.action == RESOLVED else None
    adr = latest(ADR_SENT, ADR_WITHHELD, ADR_HELD)
    adr_notice = ""
    if adr is not None and adr.action == ADR_SENT:
        adr_notice = "sent"
    elif adr is not None and adr.action == ADR_HELD:
        adr_notice = "held back"
    elif adr is not None:
        adr_notice = f"withheld: {withheld_reason(adr.detail)}"
    deadlock = latest(DEADLOCK_SENT, DEADLOCK_HELD)
    escalation = latest(ESCALATED)
    decided = latest(ADR_OUTCOME)
    return CaseFigures(
        ref=case.ref,
        received_at=case.received_at,
        first_response_due=case.first_response_due,
        first_staff_reply_at=reply,
        first_response=first_response,
        level="manager" if escalation else "team_leader",
        escalated_at=escalation.at if escalation else None,
        updates_sent=count(UPDATE_SENT),
        adr_date=case.adr_date,
        adr_notice=adr_notice,
        deadlock_requests=count(DEADLOCK_REQUESTED),
        deadlock_sent_at=deadlock.at if deadlock and deadlock.action == DEADLOCK_SENT else None,
        deadlock_refusals=count(DEADLOCK_REFUSED),
        resolved_at=resolved_at,
        working_days_to_resolve=(
            round(calendar.working_days_between(case.received_at, resolved_at), 2)
            if resolved_at
            else None
        ),
        personal_data_erased=case.personal_data_erased_at is not None,
        outcome=outcome(before),
        adr_referred=latest(ADR_REFERRED) is not None,
        # the case keeps the decision (one per case): the event's words go with erasure
        adr_outcome=(case.adr_outcome or "other") if decided else "",
        remedy_late=latest(REMEDY_LATE) is not None,
        subject_access=(
            count(SAR_RECEIVED),
            count(SAR_ANSWERED_ON_TIME),  # the rule's records: the staff's note goes with erasure
            count(SAR_ANSWERED_LATE),
            count(SAR_EXTENDED),
        ),
        adr_letters_undelivered=sum(
            1 for e in before if e.action == UNDELIVERED and e.detail.split(" ")[0] in HELD_LETTERS
        ),
        adr_letters_by_post=count(SENT_BY_POST),
    )


def outcome(events: Sequence[Event]) -> str:
    """Where a case stood after its EVENTS (oldest first): one of OUTCOMES."""
    if any(e.action == MERGED_INTO for e in events):
        return "merged"
    stood = "open"
    for e in events:
        if e.action == NOT_A_COMPLAINT:
            stood = "not_a_complaint"
        elif e.action == RESOLVED:
            stood = "resolved"
        elif e.action == ADR_REFERRED:
            stood = "with_adr"
        elif e.action == DEADLOCK_SENT and stood == "open":
            stood = "final_response"
        elif e.action == REOPENED:
            stood = "open"
    return stood


def withheld_reason(detail: str) -> str:
    """Which of R5's exceptions an "adr notice withheld" event names."""
    for reason, words in rules.WITHHELD.items():
        if detail.endswith(words):
            return reason
    return "other"


def totals(cases: Iterable[CaseFigures]) -> dict[str, Any]:
    """The figures of CASES, with the contract's keys: those not complaints counted apart."""
    every = list(cases)
    cases = [c for c in every if c.complaint]
    resolved = [c for c in cases if c.resolved_at is not None]
    withheld = [c.withheld_reason for c in cases if c.withheld_reason]
    to_resolve = [
        c.working_days_to_resolve for c in resolved if c.working_days_to_resolve is not None
    ]
    return {
        "complaints_received": len(cases),
        "cases_resolved": len(resolved),
        "open_at_end": len(cases) - len(resolved),
        "escalated": sum(1 for c in cases if c.escalated_at is not None),
        "first_response": {
            outcome: sum(1 for c in cases if c.first_response == outcome)
            for outcome in ("on_time", "late", "pending")
        },
        "updates_sent": sum(c.updates_sent for c in cases),
        "adr_notices_sent": sum(1 for c in cases if c.adr_notice == "sent"),
        "adr_notices_withheld": {r: withheld.count(r) for r in WITHHELD_REASONS},
        "deadlock_requests": sum(c.deadlock_requests for c in cases),
        "deadlock_letters_sent": sum(1 for c in cases if c.deadlock_sent_at is not None),
        "deadlock_refused": sum(c.deadlock_refusals for c in cases),
        "median_working_days_to_resolve": (
            round(statistics.median(to_resolve), 2) if to_resolve else None
        ),
        "final_response_at_end": sum(1 for c in cases if c.outcome == "final_response"),
        "with_adr_at_end": sum(1 for c in cases if c.outcome == "with_adr"),
        "adr_referrals": sum(1 for c in cases if c.adr_referred),
        "adr_outcomes": {k: sum(1 for c in cases if c.adr_outcome == k) for k in ADR_OUTCOMES},
        "remedies_late": sum(1 for c in cases if c.remedy_late),
        "subject_access_requests": subject_access_figures(every),
        "adr_letters_undelivered": sum(c.adr_letters_undelivered for c in cases),
        "adr_letters_by_post": sum(c.adr_letters_by_post for c in cases),
        **{apart: sum(1 for c in every if c.outcome == apart) for apart in APART},
    }


def subject_access_figures(cases: Sequence[CaseFigures]) -> dict[str, int]:
    """The subject access requests on CASES (complaints or not: the law's clock runs on
    every request): received, answered on time and late, extended, still open."""
    received, on_time, late, extended = (sum(c.subject_access[i] for c in cases) for i in range(4))
    return {
        "received": received,
        "answered_on_time": on_time,
        "answered_late": late,
        "extended": extended,
        "open": received - on_time - late,
    }


@dataclass(frozen=True)
class Attention:
    """An open case a manager should look at now, and why."""

    ref: str
    why: str
    by: datetime  # when it fell due, or falls due


def needing_attention(
    session: Session, now: datetime, policy: rules.TimeLimits, calendar: BusinessCalendar
) -> list[Attention]:
    """Open cases with the first response overdue, the ADR date within a week, or a
    deadlock decision pending, soonest first."""
    found = []
    soon = now + timedelta(days=ATTENTION_ADR_DAYS)
    for case in open_cases(session):
        state = state_of(case)
        if case.first_staff_reply_at is None and case.first_response_due <= now:
            found.append(Attention(case.ref, "first response overdue", case.first_response_due))
        if case.adr_notice_decided_at is None and case.adr_date <= soon:
            found.append(Attention(case.ref, "ADR date within 7 days", case.adr_date))
        if state.deadlock_pending and not state.flags & set(rules.EXCEPTIONS):
            requested = state.deadlock_requested_at
            assert requested is not None
            due = rules.deadlock_decision_due(requested, calendar, policy)
            found.append(Attention(case.ref, "deadlock decision pending", due))
    return sorted(found, key=lambda a: (a.by, a.ref))


@dataclass
class Report:
    """A period's figures, its cases one by one, and what needs attention now."""

    period: Period
    figures: dict[str, Any]
    cases: list[CaseFigures]
    attention: list[Attention] = field(default_factory=list)


def build_report(
    session: Session,
    period: Period,
    now: datetime,
    calendar: BusinessCalendar,
    policy: rules.TimeLimits,
    adr_wait_weeks: int,
) -> Report:
    """The figures of the cases received in PERIOD, as recorded by its end (or NOW)."""
    start, end = period.bounds(calendar)
    horizon = min(end, now)
    cases = cases_received_between(session, start, end)
    case_ids = [c.id for c in cases if c.id is not None]
    events = events_of_cases(session, case_ids, COUNTED, horizon)
    each = [case_figures(c, events.get(c.id, []), horizon, calendar) for c in cases]
    zone = calendar.zone
    by_week = []
    for monday in period.weeks():
        week = [
            c
            for c in each
            if monday <= c.received_at.astimezone(zone).date() < monday + timedelta(weeks=1)
        ]
        counted = totals(week)
        received = counted.pop("complaints_received")  # "received", as the contract names it
        by_week.append({"week_of": monday.isoformat(), "received": received, **counted})
    figures = {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat()},
        **totals(each),
        "by_week": by_week,
        "adr_wait_weeks": adr_wait_weeks,
        "ofcom_adr_wait_weeks": rules.ofcom_adr_wait_weeks(horizon.astimezone(zone).date()),
        "held_messages": held_figures(held_received_between(session, start, end)),
    }
    attention = needing_attention(session, now, policy, calendar)
    return Report(period, figures, each, attention)


def held_figures(rows: Iterable[tuple[str, str, int]]) -> dict[str, Any]:
    """Messages held as spam or forged (none is a complaint until released): how many, how
    many staff released, and how many by the verdict that held them (mail.spam.VERDICTS)."""
    by_reason: dict[str, int] = {}
    total = released = 0
    for reason, released_by, count in rows:
        total += count
        released += count if released_by else 0
        verdict = verdict_of(reason)
        by_reason[verdict] = by_reason.get(verdict, 0) + count
    return {"total": total, "released": released, "by_reason": dict(sorted(by_reason.items()))}


# -- the formats -----------------------------------------------------------------------------


def as_json(report: Report) -> str:
    return json.dumps(report.figures, indent=2)


CSV_COLUMNS = (
    "reference",
    "received_at",
    "first_response_due",
    "first_staff_reply_at",
    "first_response",
    "level",
    "escalated_at",
    "updates_sent",
    "adr_date",
    "adr_notice",
    "deadlock_requests",
    "deadlock_sent_at",
    "deadlock_refusals",
    "outcome",
    "resolved_at",
    "working_days_to_resolve",
    "personal_data_erased",
)


def as_csv(report: Report) -> str:
    """One row per case, for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in report.cases:
        writer.writerow(
            [
                c.ref,
                _iso(c.received_at),
                _iso(c.first_response_due),
                _iso(c.first_staff_reply_at),
                c.first_response,
                c.level,
                _iso(c.escalated_at),
                c.updates_sent,
                _iso(c.adr_date),
                c.adr_notice,
                c.deadlock_requests,
                _iso(c.deadlock_sent_at),
                c.deadlock_refusals,
                c.outcome,
                _iso(c.resolved_at),
                "" if c.working_days_to_resolve is None else c.working_days_to_resolve,
                "yes" if c.personal_data_erased else "no",
            ]
        )
    return out.getvalue()


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def figure_lines(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures as (label, value) rows, in the order a manager reads them."""
    first = figures["first_response"]
    withheld = figures["adr_notices_withheld"]
    median = figures["median_working_days_to_resolve"]
    return [
        ("Complaints received", str(figures["complaints_received"])),
        ("Resolved within the period", str(figures["cases_resolved"])),
        ("Open at the end of the period", str(figures["open_at_end"])),
        ("Escalated to Manager level", str(figures["escalated"])),
        ("First response on time", str(first["on_time"])),
        ("First response late", str(first["late"])),
        ("First response not yet due", str(first["pending"])),
        ("Updates sent", str(figures["updates_sent"])),
        ("ADR notices sent", str(figures["adr_notices_sent"])),
        ("ADR letters undelivered (bounced)", str(figures["adr_letters_undelivered"])),
        ("ADR letters sent by post", str(figures["adr_letters_by_post"])),
        (
            "ADR notices withheld",
            f"{sum(withheld.values())} (resolved {withheld['resolved']}, vexatious "
            f"{withheld['vexatious']}, out of scope {withheld['out_of_scope']}, final response "
            f"{withheld['final_response']}, with the ADR scheme {withheld['with_adr']})",
        ),
        ("Deadlock letters requested", str(figures["deadlock_requests"])),
        ("Deadlock letters sent", str(figures["deadlock_letters_sent"])),
        ("Deadlock requests refused", str(figures["deadlock_refused"])),
        ("Referred to the ADR scheme", str(figures["adr_referrals"])),
        (
            "ADR scheme's decisions",
            ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures["adr_outcomes"].items()),
        ),
        ("Remedies late", str(figures["remedies_late"])),
        (
            "Subject access requests",
            "{received} (answered on time {answered_on_time}, late {answered_late}; extended "
            "{extended}; open {open})".format(**figures["subject_access_requests"]),
        ),
        ("Not complaints (counted apart)", str(figures["not_a_complaint"])),
        ("Merged into another case (counted apart)", str(figures["merged"])),
        (
            "Median time to resolve",
            "no case resolved" if median is None else f"{median} working days",
        ),
    ]


def wait_words(figures: dict[str, Any]) -> str:
    """The ADR wait in force, beside Ofcom's rule."""
    ours, ofcom = figures["adr_wait_weeks"], figures["ofcom_adr_wait_weeks"]
    rule = f"Ofcom's rule for communications providers: {rules.ofcom_words(ofcom)}"
    longer = "; longer than the rule" if ours > ofcom else ""
    return f"ADR wait in force: {ours} weeks ({rule}{longer})"


def period_words(period: Period) -> str:
    def day(d: date) -> str:
        return f"{d.day} {d:%B %Y}"

    return f"{day(period.first)} to {day(period.last)}"


def attention_words(item: Attention, calendar: BusinessCalendar) -> str:
    return f"{item.ref}  {item.why} ({calendar.when(item.by)})"


def as_text(report: Report, calendar: BusinessCalendar) -> str:
    lines = [
        f"Complaints received {period_words(report.period)}, and what became of them by its end",
        "",
    ]
    width = max(len(label) for label, _ in figure_lines(report.figures))
    lines += [f"  {label:<{width}}  {value}" for label, value in figure_lines(report.figures)]
    lines += ["", wait_words(report.figures), "", "By week of receipt (received, on time):"]
    lines += [
        f"  {w['week_of']}  {w['received']:>4}  {w['first_response']['on_time']:>4}"
        for w in report.figures["by_week"]
    ]
    lines += ["", f"Cases that need attention now: {len(report.attention) or 'none'}"]
    lines += [f"  {attention_words(a, calendar)}" for a in report.attention]
    return "\n".join(lines) + "\n"


def chart(by_week: Sequence[dict[str, Any]], image: str) -> bytes:
    """Complaints received and first responses on time per week, as IMAGE ("svg" or "png").

    matplotlib is imported here, not at the top: the daemon and the CLI start without it.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    labels = [date.fromisoformat(w["week_of"]).strftime("%d %b") for w in by_week]
    places = range(len(by_week))
    received = [w["received"] for w in by_week]
    on_time = [w["first_response"]["on_time"] for w in by_week]
    axes.bar([x - 0.2 for x in places], received, 0.4, label="Complaints received", color="#4a6fa5")
    axes.bar(
        [x + 0.2 for x in places], on_time, 0.4, label="First response on time", color="#5aa469"
    )
    axes.set_xticks(list(places), labels)
    axes.set_xlabel("Week of receipt (Monday)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    figure.legend(frameon=False, loc="outside upper left", ncols=2)  # above: never on a bar
    out = io.BytesIO()
    # no date in the file: the same figures make the same bytes
    metadata = {"Date": None} if image == "svg" else {"Software": None}
    figure.savefig(out, format=image, metadata=metadata)
    return out.getvalue()


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 60em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; }
td, th { padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #555; }
"""


def as_html(report: Report, calendar: BusinessCalendar) -> str:
    """One self-contained page: inline style and SVG chart, nothing fetched."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(label)}</td><td class='n'>{esc(value)}</td></tr>"
        for label, value in figure_lines(report.figures)
    )
    svg = chart(report.figures["by_week"], "svg").decode("utf-8")
    svg = svg[svg.index("<svg") :]  # inline: no XML declaration or doctype
    attention = "".join(
        f"<tr><td>{esc(a.ref)}</td><td>{esc(a.why)}</td><td>{esc(calendar.when(a.by))}</td></tr>"
        for a in report.attention
    )
    attention_table = (
        f"<table><tr><th>Case</th><th>Why</th><th>Due</th></tr>{attention}</table>"
        if attention
        else "<p>None.</p>"
    )
    title = f"Complaints report: {period_words(report.period)}"
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p class="note">The complaints received in the period, and what became of them by its end.
{esc(wait_words(report.figures))}.</p>
<h2>Figures</h2>
<table>{rows}</table>
<h2>Complaints received and first responses on time, by week</h2>
{svg}
<h2>Cases that need attention now ({len(report.attention)})</h2>
<p class="note">First response overdue, ADR date within 7 days, or a deadlock decision
pending.</p>
{attention_table}
</body>
</html>
"""
