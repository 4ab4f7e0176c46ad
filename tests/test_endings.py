"""How a complaint ends (issue 25), as pure rules: no database, no mail, the moment an argument."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from mailbot.mail.parse import Address
from mailbot.procedure import effects as fx
from mailbot.procedure import rules
from mailbot.procedure import transitions as t
from mailbot.procedure.case import CaseState, ReturnedLetter
from mailbot.procedure.commands import Role, named_cases, read_commands
from mailbot.procedure.rules import Due, RemedyStage
from mailbot.procedure.vocabulary import CaseStatus, MessageKind
from mailbot.report import outcome
from mailbot.store.models import Event
from tests.test_transitions import (
    LEADER,
    MANAGER,
    POLICY,
    RECEIVED,
    actions,
    case,
    changed,
    letters_to_customer,
)

CALENDAR = POLICY.calendar


def after(state: CaseState, effects: list[fx.Effect], now: datetime) -> CaseState:
    return t.evolve(state, effects, now)


def replay(state: CaseState, start: datetime, days: int) -> tuple[CaseState, list[fx.Effect]]:
    """Every rule run at 09:30 and 16:30 UTC each day for DAYS days: the state and effects."""
    every: list[fx.Effect] = []
    for day in range(days):
        for hour in (9, 16):
            now = (start + timedelta(days=day)).replace(hour=hour, minute=30)
            effects, _ = t.run_due(state, now, POLICY)
            every += effects
            state = after(state, effects, now)
    return state, every


def command(
    state: CaseState, text: str, now: datetime, named: dict[str, CaseState] | None = None
) -> tuple[list[fx.Effect], list[str]]:
    """A manager's reply of TEXT on STATE: its effects and what was done (refusals raise)."""
    reply = read_commands(text, Role.MANAGER)
    assert not reply.errors, reply.errors
    refused = t.staff_refusals(state, reply, now, POLICY, named)
    assert not refused, refused
    return t.staff_replied(state, MANAGER, reply, frozenset(), now, POLICY, named)


def refusals(state: CaseState, text: str, now: datetime, **named: CaseState) -> list[str]:
    reply = read_commands(text, Role.MANAGER)
    return list(reply.errors) + t.staff_refusals(state, reply, now, POLICY, named)


# -- 1. final response ---------------------------------------------------------------------


def final_response(now: datetime = RECEIVED + timedelta(days=3)) -> CaseState:
    effects, _ = command(case(), "#deadlock We cannot offer more than the refund.", now)
    return after(case(), effects, now)


def test_the_deadlock_letter_is_the_final_response_and_stops_the_clocks() -> None:
    state = final_response()
    assert state.status == CaseStatus.FINAL_RESPONSE
    assert state.deadlock_sent_at is not None
    plan = rules.plan(state, RECEIVED + timedelta(weeks=9), CALENDAR, POLICY.limits)
    assert plan.due == (Due.ADR_NOTICE_WITHHELD,)  # recorded, never sent


def test_eight_weeks_after_a_final_response_send_the_customer_nothing() -> None:
    state, effects = replay(final_response(), RECEIVED + timedelta(days=4), 70)
    assert letters_to_customer(effects) == []
    assert not [e for e in effects if isinstance(e, fx.ToRole)]  # no escalation, no R2
    assert actions(effects) == ["adr notice withheld"]
    assert state.adr_notice_decision.startswith("not sent: the deadlock letter was our final")
    assert state.status == CaseStatus.FINAL_RESPONSE


def test_an_automatic_deadlock_letter_is_a_final_response_too() -> None:
    asked = replace(case(), deadlock_requested_at=RECEIVED)
    state, effects = replay(asked, RECEIVED, 70)
    assert letters_to_customer(effects).count(MessageKind.DEADLOCK_LETTER) == 1
    assert state.status == CaseStatus.FINAL_RESPONSE
    sent = state.deadlock_sent_at
    assert sent is not None and sent < RECEIVED + timedelta(days=2)
    kinds = letters_to_customer(effects)
    assert kinds[kinds.index(MessageKind.DEADLOCK_LETTER) + 1 :] == []  # nothing after it


def test_the_customer_after_a_final_response_reaches_staff_and_nothing_goes_back() -> None:
    state = final_response()
    now = RECEIVED + timedelta(days=10)
    effects = t.customer_replied(
        state, "pat@example.com", "I want the deadlock letter again", [], "deadlock", now, POLICY
    )
    assert letters_to_customer(effects) == []
    assert [type(e) for e in effects] == [fx.Attach, fx.Record, fx.Notify]
    notify = effects[-1]
    assert isinstance(notify, fx.Notify) and "asking for the deadlock letter" in notify.headline
    assert changed(effects) == {}  # not reopened: it is not resolved


def test_reopen_returns_a_final_response_to_open_with_its_clocks() -> None:
    state = final_response()
    now = RECEIVED + timedelta(days=20)
    effects, _ = command(state, "#reopen the customer sent new evidence", now)
    reopened = after(state, effects, now)
    assert reopened.status == CaseStatus.OPEN
    assert reopened.adr_date == state.adr_date
    # the deadlock letter gave the ADR rights: R5's notice is still not due to go
    plan = rules.plan(reopened, state.adr_date + timedelta(hours=1), CALENDAR, POLICY.limits)
    assert Due.ADR_NOTICE not in plan.due and Due.ADR_NOTICE_WITHHELD in plan.due


def test_resolve_ends_a_final_response() -> None:
    state = final_response()
    effects, _ = command(state, "#resolve Refunded in full", RECEIVED + timedelta(days=9))
    assert after(state, effects, RECEIVED).status == CaseStatus.RESOLVED
    assert letters_to_customer(effects) == [MessageKind.RESOLUTION]


def test_a_letter_the_server_could_not_take_is_no_final_response() -> None:
    state = final_response()
    effects = t.not_taken(state, MessageKind.DEADLOCK_LETTER, "550 no such user")
    assert changed(effects) == {"deadlock_sent_at": None, "status": CaseStatus.OPEN}


# -- 2. with the ADR scheme -----------------------------------------------------------------


def test_adr_is_refused_on_an_open_case_before_its_adr_date() -> None:
    early = RECEIVED + timedelta(weeks=2)
    [refused] = refusals(case(), "#adr OS-1", early)
    assert "has not come: the scheme would not take it yet" in refused
    assert refusals(case(), "#adr OS-1", RECEIVED + timedelta(weeks=8, hours=1)) == []
    assert refusals(final_response(), "#adr OS-1 2027-01-20", early) == []
    assert refusals(case(status=CaseStatus.RESOLVED), "#adr OS-1", early) == []


def test_adr_records_the_scheme_and_writes_to_nobody() -> None:
    now = RECEIVED + timedelta(weeks=3)
    effects, done = command(final_response(), "#adr OS-123 2026-04-06", now)
    state = after(final_response(), effects, now)
    assert state.status == CaseStatus.WITH_ADR
    assert (state.adr_scheme_ref, state.adr_case_file_due) == ("OS-123", date(2026, 4, 6))
    assert letters_to_customer(effects) == []
    assert "referred to the ADR scheme" in actions(effects)
    assert "reminded the working day before the case file's date" in done[0]
    assert refusals(state, "#adr OS-9", now) == [
        "CMP-2026-00001 is already with the ADR scheme (reference OS-123)"
    ]


def test_the_case_file_reminder_goes_the_working_day_before_its_date() -> None:
    state = replace(final_response(), status=CaseStatus.WITH_ADR, adr_scheme_ref="OS-1")
    monday = replace(state, adr_case_file_due=date(2026, 4, 7))  # after Easter Monday
    at = rules.case_file_reminder_at(monday, CALENDAR)
    assert at is not None and at.date() == date(2026, 4, 2)  # Thursday: 3 and 6 April are off
    effects, done = t.run_due(monday, at, POLICY)
    assert done == [Due.ADR_CASE_FILE_REMINDER]
    [letter] = [e for e in effects if isinstance(e, fx.ToRole)]
    assert (letter.role, letter.kind, letter.also_handlers) == (
        "manager",
        MessageKind.ADR_CASE_FILE_DUE,
        True,
    )
    assert t.run_due(monday, at - timedelta(minutes=1), POLICY)[1] == []
    reminded = after(monday, effects, at)
    assert rules.case_file_reminder_at(reminded, CALENDAR) is None  # once


def test_an_upheld_decision_makes_the_remedy_due_28_days_later() -> None:
    referred = replace(final_response(), status=CaseStatus.WITH_ADR, adr_scheme_ref="OS-1")
    now = datetime(2026, 5, 5, 11, 0, tzinfo=UTC)
    effects, done = command(referred, "#adr-outcome upheld Refund £30 and apologise", now)
    state = after(referred, effects, now)
    assert (state.adr_outcome, state.remedy) == ("upheld", "Refund £30 and apologise")
    assert state.remedy_due == date(2026, 6, 2)
    assert state.status == CaseStatus.WITH_ADR and letters_to_customer(effects) == []
    assert "the remedy is due by 2 June 2026" in done[0]


def with_remedy(outcome: str = "upheld") -> CaseState:
    """A case the scheme decided on, a refund due on Tuesday 2 June 2026."""
    return replace(
        final_response(),
        status=CaseStatus.WITH_ADR,
        adr_outcome=outcome,
        remedy="Refund",
        remedy_due=date(2026, 6, 2),
        adr_notice_decided_at=RECEIVED,
    )


def test_the_remedy_reminders_go_a_week_and_a_working_day_before_then_late() -> None:
    state = with_remedy()  # due on a Tuesday
    moments = rules.remedy_moments(date(2026, 6, 2), CALENDAR)
    assert [m.date() for m in moments.values()] == [
        date(2026, 5, 26),
        date(2026, 6, 1),
        date(2026, 6, 3),
    ]
    stages = []
    for now in moments.values():
        effects, done = t.run_due(state, now, POLICY)
        assert done == [Due.REMEDY_REMINDER]
        stages.append(changed(effects)["remedy_told"])
        state = after(state, effects, now)
    assert stages == [RemedyStage.WEEK, RemedyStage.DAY, RemedyStage.LATE]
    assert rules.plan(state, moments[RemedyStage.LATE], CALENDAR, POLICY.limits).next_due_at is None


def test_a_late_remedy_found_late_is_one_alert_not_three() -> None:
    state = with_remedy("partly")
    effects, _ = t.run_due(state, datetime(2026, 6, 10, 9, 0, tzinfo=UTC), POLICY)
    assert actions(effects) == ["remedy late"]
    [letter] = [e for e in effects if isinstance(e, fx.ToRole)]
    assert letter.context["stage"] == "late" and letter.role == "manager"


def test_remedy_done_and_not_upheld_resolve_with_the_outcome_as_summary() -> None:
    pending = with_remedy()
    now = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
    effects, _ = command(pending, "#remedy-done refunded £30 on 19 May", now)
    done = after(pending, effects, now)
    assert done.status == CaseStatus.RESOLVED and done.remedy_done_at == now
    assert done.resolution_summary == "ADR scheme: upheld; remedy done: refunded £30 on 19 May"
    assert letters_to_customer(effects) == []
    referred = replace(final_response(), status=CaseStatus.WITH_ADR)
    effects, _ = command(referred, "#adr-outcome not-upheld", now)
    assert after(referred, effects, now).resolution_summary == "ADR scheme: not upheld"
    assert refusals(referred, "#remedy-done x", now) == [
        "CMP-2026-00001 is with the ADR scheme: no remedy the ADR scheme decided is waiting on it"
    ]
    assert refusals(case(), "#adr-outcome upheld", now)[0].endswith(
        "#adr-outcome is for a case with the ADR scheme"
    )


def test_adr_commands_check_their_words() -> None:
    reply = read_commands("#adr OS-1 20/01/2027\n#adr-outcome maybe", Role.MANAGER)
    assert reply.errors == (
        "#adr's date is written YYYY-MM-DD (2027-01-31), not '20/01/2027'.",
        "#adr-outcome takes upheld, partly or not-upheld first, not 'maybe'.",
    )
    assert read_commands("#ADR-Outcome Partly: credit", Role.MANAGER).commands[0].outcome == (
        "partly"
    )
    assert read_commands("#adr OS-1", Role.AGENT).errors  # for team leaders and managers


# -- 3. not a complaint ----------------------------------------------------------------------


def test_not_a_complaint_stops_every_letter_and_every_timer() -> None:
    now = RECEIVED + timedelta(hours=2)
    effects, done = command(case(), "#not-a-complaint a sales offer", now)
    state = after(case(), effects, now)
    assert state.status == CaseStatus.NOT_A_COMPLAINT
    assert state.adr_notice_decision == "not sent: it is not a complaint"
    assert letters_to_customer(effects) == []
    assert rules.plan(state, now, CALENDAR, POLICY.limits).next_due_at is None
    _, later = replay(state, RECEIVED + timedelta(days=1), 70)
    assert later == []
    assert "no letter of any kind" in done[0]


def test_mail_on_a_case_that_is_not_a_complaint_is_kept_and_tells_nobody() -> None:
    from mailbot.procedure.route import silence

    state = case(status=CaseStatus.NOT_A_COMPLAINT)
    reply = t.customer_replied(state, "pat@example.com", "Buy now", [], None, RECEIVED, POLICY)
    assert [type(e) for e in reply] == [fx.Attach]
    stranger = silence(state, t.stranger_wrote(_writer(), "hi", [], None))
    assert [type(e) for e in stranger] == [fx.Attach]
    assert refusals(state, "#escalate why", RECEIVED) == [
        '#escalate does not apply: CMP-2026-00001 is marked not a complaint ("#reopen REASON" '
        "first)"
    ]


def test_staff_words_on_a_case_that_is_not_a_complaint_are_not_sent() -> None:
    state = case(status=CaseStatus.NOT_A_COMPLAINT)
    effects, done = command(state, "Thanks, we are not interested.", RECEIVED)
    assert not [e for e in effects if isinstance(e, fx.Relay)]
    assert done[0].startswith("did not send your words to the customer")
    effects, _ = command(
        state, "#reopen it is a complaint after all\nSorry, we are on it.", RECEIVED
    )
    assert [e for e in effects if isinstance(e, fx.Relay)]
    assert after(state, effects, RECEIVED).status == CaseStatus.OPEN


def _writer() -> Address:
    return Address("Sam Other", "sam@example.net")


# -- 4. merged ---------------------------------------------------------------------------------


def two_cases() -> tuple[CaseState, CaseState]:
    first = case()
    later = case(
        ref="CMP-2026-00002",
        received_at=RECEIVED + timedelta(days=1),
        adr_date=RECEIVED + timedelta(days=1, weeks=8),
        addresses=frozenset({"pat@example.com", "pat@work.example"}),
    )
    return first, later


def test_merge_keeps_the_case_received_first_whichever_it_was_sent_on() -> None:
    first, later = two_cases()
    now = RECEIVED + timedelta(days=2)
    for on, other in ((later, first), (first, later)):
        effects, done = command(on, f"#merge {other.ref}", now, {other.ref: other})
        [elsewhere] = [e for e in effects if isinstance(e, fx.OnCase)]
        here: list[fx.Effect] = [e for e in effects if not isinstance(e, fx.OnCase)]
        there: list[fx.Effect] = list(elsewhere.effects)
        on_first = here if on is first else there
        on_later = here if on is later else there
        assert elsewhere.ref == other.ref
        survivor, merged = after(first, on_first, now), after(later, on_later, now)
        assert merged.status == CaseStatus.MERGED and merged.merged_into == first.ref
        assert merged.adr_notice_decision == "not sent: the case was merged into another"
        assert survivor.status == CaseStatus.OPEN
        assert (survivor.received_at, survivor.adr_date) == (first.received_at, first.adr_date)
        assert survivor.addresses == first.addresses | later.addresses
        assert letters_to_customer(on_first) == [MessageKind.MERGE_NOTICE]
        assert letters_to_customer(on_later) == []
        assert f"merged {later.ref} into {first.ref}" in done[0]
        assert rules.plan(merged, now + timedelta(weeks=9), CALENDAR, POLICY.limits).due == ()


def test_merge_refuses_itself_a_merged_case_and_no_case() -> None:
    first, later = two_cases()
    merged = replace(later, status=CaseStatus.MERGED, merged_into="CMP-2026-00009")
    assert refusals(first, f"#merge {first.ref}", RECEIVED) == [
        "#merge names CMP-2026-00001 itself: name the other case"
    ]
    assert refusals(first, "#merge cmp-2026-00002", RECEIVED, **{later.ref: merged}) == [
        "CMP-2026-00002 was merged into CMP-2026-00009: merge onto CMP-2026-00009"
    ]
    assert refusals(first, "#merge CMP-2026-00077", RECEIVED) == [
        "#merge names CMP-2026-00077, which is no case"
    ]
    resolved = replace(later, status=CaseStatus.RESOLVED)
    [refused] = refusals(first, "#merge CMP-2026-00002", RECEIVED, **{later.ref: resolved})
    assert refused.startswith("CMP-2026-00002 is resolved: only cases still being worked merge")


def test_a_pending_deadlock_request_is_carried_onto_the_survivor() -> None:
    first, later = two_cases()
    asked = replace(later, deadlock_requested_at=RECEIVED + timedelta(days=1, hours=1))
    effects, _ = command(first, f"#merge {later.ref}", RECEIVED, {later.ref: asked})
    assert changed(effects)["deadlock_requested_at"] == asked.deadlock_requested_at


def test_the_load_stage_reads_the_cases_merge_names() -> None:
    assert named_cases("#merge cmp-2026-00002\n#Merge CMP-2026-00003 extra\n> #merge X") == [
        "CMP-2026-00002",
        "CMP-2026-00003",
    ]


# -- the report's reading of the records ---------------------------------------------------


def test_the_report_reads_where_each_case_stood() -> None:
    def stood(*actions: str) -> str:
        return outcome([Event(case_id=1, at=RECEIVED, actor="x", action=a) for a in actions])

    assert stood() == "open"
    assert stood("deadlock letter sent") == "final_response"
    assert stood("deadlock letter sent", "referred to the ADR scheme") == "with_adr"
    assert stood("referred to the ADR scheme", "resolved") == "resolved"
    assert stood("not a complaint") == "not_a_complaint"
    assert stood("not a complaint", "reopened") == "open"
    assert stood("merged into", "reopened") == "merged"
    assert LEADER.role == "team_leader"


def test_a_case_file_date_already_past_is_told_at_once_as_passed() -> None:
    now = datetime(2026, 4, 15, 14, 0, tzinfo=UTC)
    effects, _ = command(final_response(), "#adr OS-7 2026-04-10", now)
    state = after(final_response(), effects, now)
    assert rules.plan(state, now, CALENDAR, POLICY.limits).due[-1] == Due.ADR_CASE_FILE_REMINDER
    effects, _ = t.run_due(state, now, POLICY)
    [letter] = [e for e in effects if isinstance(e, fx.ToRole)]
    assert letter.context["when"] == "passed"
    assert actions(effects)[-1:] == ["adr case file reminder"]


# -- a bounced ADR letter goes by post (issue 28) ---------------------------------------------


CUSTOMER_ADDRESS = "pat@example.com"


def returned(kind: str, undelivered: bool = False) -> ReturnedLetter:
    return ReturnedLetter("<mailbot.1@provider.example>", kind, CUSTOMER_ADDRESS, undelivered)


def test_a_bounced_deadlock_letter_is_marked_undelivered_and_the_managers_told_to_post_it() -> None:
    state = final_response()
    failed = f"{CUSTOMER_ADDRESS} 5.1.1 permanent"
    effects = t.bounced(failed, [(CUSTOMER_ADDRESS, "5.1.1 bounce")], "", state,
                        [returned("deadlock_letter")])  # fmt: skip
    assert fx.Undelivered("<mailbot.1@provider.example>", failed) in effects
    assert fx.ToPrint("<mailbot.1@provider.example>", "deadlock_letter", failed) in effects
    assert fx.Change({"by_post_due": "deadlock_letter"}) in effects
    now = RECEIVED + timedelta(days=4)
    posted = after(state, effects, now)
    assert refusals(posted, "#sent-by-post 2026-13-01", now) == [
        "#sent-by-post takes the day it was posted, YYYY-MM-DD, not '2026-13-01'."
    ]
    done, said = command(posted, "#sent-by-post 2026-03-06", now)
    assert (
        fx.Record(MANAGER.email, t.SENT_BY_POST, "the deadlock letter posted on 2026-03-06") in done
    )
    assert after(posted, done, now).by_post_due == ""
    assert said == ["recorded the deadlock letter posted on 2026-03-06"]


def test_an_update_that_bounced_is_undelivered_but_no_duty_goes_by_post() -> None:
    effects = t.bounced("x 5.1.1", [(CUSTOMER_ADDRESS, "b")], "", case(), [returned("update")])
    assert any(isinstance(e, fx.Undelivered) for e in effects)
    assert not any(isinstance(e, fx.ToPrint) for e in effects)


def test_sent_by_post_is_refused_when_no_letter_waits_to_be_posted() -> None:
    assert refusals(case(ref="CMP-2026-000001"), "#sent-by-post 2026-03-06", RECEIVED) == [
        "CMP-2026-000001 has no bounced ADR notice or deadlock letter waiting to be posted"
    ]
