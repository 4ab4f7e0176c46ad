"""The case's life as pure transitions: no database, no mail, the moment as an argument."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from mailbot.config import StaffSettings
from mailbot.mail.parse import Address
from mailbot.procedure import effects as fx
from mailbot.procedure import rules
from mailbot.procedure import transitions as t
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.case import CaseState
from mailbot.procedure.commands import Role, read_commands
from mailbot.procedure.details import Detail
from mailbot.procedure.policy import Policy
from mailbot.procedure.rules import Due
from mailbot.store.models import CaseStatus, Level, MessageKind

RECEIVED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning, in business hours
LEADER = StaffSettings(email="terry@provider.example", name="Terry Leader", role="team_leader")
MANAGER = StaffSettings(email="morgan@provider.example", name="Morgan Manager", role="manager")
POLICY = Policy(
    calendar=BusinessCalendar(),
    limits=rules.TimeLimits(time(16, 0), 10, 1),
    reopen_days=14,
    adr_wait_weeks=8,
    staff=(LEADER, MANAGER),
)


def case(**fields: object) -> CaseState:
    state = CaseState(
        ref="CMP-2026-00001",
        subject="Broadband drops",
        customer_email="pat@example.com",
        customer_name="Pat Example",
        addresses=frozenset({"pat@example.com"}),
        received_at=RECEIVED,
        first_response_due=RECEIVED + timedelta(days=2),
        adr_date=RECEIVED + timedelta(weeks=8),
        last_customer_contact_at=RECEIVED,
    )
    return replace(state, **fields)  # type: ignore[arg-type]


def kinds(effects: list[fx.Effect]) -> list[type]:
    return [type(e) for e in effects]


def changed(effects: list[fx.Effect]) -> dict[str, object]:
    out: dict[str, object] = {}
    for effect in effects:
        if isinstance(effect, fx.Change):
            out |= dict(effect.fields)
    return out


def actions(effects: list[fx.Effect]) -> list[str]:
    return [e.action for e in effects if isinstance(e, fx.Record)]


def letters_to_customer(effects: list[fx.Effect]) -> list[MessageKind]:
    return [e.kind for e in effects if isinstance(e, fx.ToCustomer)]


def test_a_new_complaint_is_filed_acknowledged_and_its_handlers_told() -> None:
    effects = t.opened(
        case(),
        "pat@example.com",
        "It drops.",
        [Detail.SERVICE],
        ["bill.pdf"],
        None,
        "",
        RECEIVED,
        POLICY,
    )
    assert kinds(effects) == [fx.Attach, fx.Acknowledge, fx.Notify]
    [ack] = [e for e in effects if isinstance(e, fx.Acknowledge)]
    assert ack.missing == (Detail.SERVICE,)
    [note] = [e for e in effects if isinstance(e, fx.Notify)]
    assert note.headline == "New complaint" and note.attachments == ("bill.pdf",)


def test_a_complaint_asking_for_a_deadlock_letter_starts_the_decision_window() -> None:
    effects = t.opened(
        case(),
        "pat@example.com",
        "Send me a deadlock letter.",
        [],
        [],
        "deadlock letter",
        "CMP-2026-00000",
        RECEIVED,
        POLICY,
    )
    assert changed(effects) == {"deadlock_requested_at": RECEIVED}
    assert actions(effects) == ["deadlock letter requested"]
    headlines = [e.headline for e in effects if isinstance(e, fx.Notify)]
    assert headlines == [
        "New complaint (follows CMP-2026-00000)",
        "Customer asks for a deadlock letter",
    ]
    # the handlers are told when it goes: one working day later, Tuesday at 10:00
    assert (
        "Tuesday 3 March 2026 at 10:00" in [e for e in effects if isinstance(e, fx.Notify)][1].text
    )


def test_a_reply_within_the_window_reopens_a_resolved_case_and_one_after_it_does_not() -> None:
    resolved = case(status=CaseStatus.RESOLVED, resolved_at=RECEIVED + timedelta(days=3))
    effects = t.customer_replied(
        resolved, "pat@example.com", "Still broken", [], None, RECEIVED + timedelta(days=5), POLICY
    )
    assert changed(effects)["status"] == CaseStatus.OPEN
    assert actions(effects) == ["reopened"]
    assert [e.headline for e in effects if isinstance(e, fx.Notify)] == [
        "Customer replied; case reopened"
    ]
    assert not t.too_late_to_reopen(resolved, RECEIVED + timedelta(days=17), POLICY)
    assert t.too_late_to_reopen(resolved, RECEIVED + timedelta(days=17, minutes=1), POLICY)


def test_reopening_keeps_a_sent_adr_notice_decided_and_undoes_one_withheld() -> None:
    withheld = case(
        status=CaseStatus.RESOLVED,
        adr_notice_decided_at=RECEIVED,
        adr_notice_decision="not sent: the case is resolved",
    )
    assert changed(t.reopen(withheld, "pat@example.com", "why"))["adr_notice_decided_at"] is None
    sent = replace(withheld, adr_notice_sent_at=RECEIVED)
    assert "adr_notice_decided_at" not in changed(t.reopen(sent, "pat@example.com", "why"))


def test_a_stranger_naming_a_case_changes_nothing_and_gets_no_letter() -> None:
    effects = t.stranger_wrote(Address("Sam", "sam@example.net"), "Send the letter", [], "letter")
    assert kinds(effects) == [fx.Attach, fx.NotifyThirdParty]
    assert changed(effects) == {} and letters_to_customer(effects) == []


def test_a_second_request_while_one_waits_is_a_chase_told_to_the_handlers_once() -> None:
    pending = case(deadlock_requested_at=RECEIVED)
    first = t.deadlock_requested(pending, "pat@example.com", "deadlock", "again", RECEIVED, POLICY)
    assert actions(first) == [t.CHASED] and kinds(first) == [fx.Record, fx.Notify]
    assert changed(first) == {}, "the first request's window stands"
    again = t.deadlock_requested(
        replace(pending, chased=True), "pat@example.com", "deadlock", "again", RECEIVED, POLICY
    )
    assert kinds(again) == [fx.Record]


def test_a_request_after_the_letter_went_sends_a_copy_not_a_new_decision() -> None:
    sent = case(deadlock_sent_at=RECEIVED, deadlock_position="Our final position")
    effects = t.deadlock_requested(sent, "pat@example.com", "deadlock", "", RECEIVED, POLICY)
    [letter] = [e for e in effects if isinstance(e, fx.ToCustomer)]
    assert letter.context["copy"] is True and letter.context["position"] == "Our final position"
    assert "deadlock_sent_at" not in changed(effects)
    assert actions(effects) == ["deadlock letter requested again", "deadlock letter copy sent"]


def test_a_deadlock_letter_held_back_is_decided_and_the_managers_are_told() -> None:
    held = case(deadlock_requested_at=RECEIVED, held="the address bounced (5.1.1 bounce)")
    effects = t.deadlock_letter(held, t.RULE, "window passed", RECEIVED, POLICY)
    assert changed(effects) == {"deadlock_position": t.GENERIC_POSITION}, "never marked sent"
    assert [e for e in effects if isinstance(e, fx.LetterHeld)] == [
        fx.LetterHeld(MessageKind.DEADLOCK_LETTER, "the address bounced (5.1.1 bounce)")
    ]
    assert actions(effects) == ["the deadlock letter held back"]


def test_the_tick_sends_the_adr_notice_once_at_eight_weeks() -> None:
    eight_weeks = RECEIVED + timedelta(weeks=8, minutes=1)
    effects, done = t.run_due(
        case(update_interval_days=0, first_staff_reply_at=RECEIVED, level=Level.MANAGER),
        eight_weeks,
        POLICY,
    )
    assert done == [Due.ADR_NOTICE]
    assert letters_to_customer(effects) == [MessageKind.ADR_NOTICE]
    fields = changed(effects)
    assert fields["adr_notice_sent_at"] == eight_weeks
    assert fields["adr_notice_decision"] == "sent: unresolved 8 weeks after receipt"
    after = t.evolve(
        case(update_interval_days=0, first_staff_reply_at=RECEIVED, level=Level.MANAGER),
        effects,
        eight_weeks,
    )
    assert t.run_due(after, eight_weeks + timedelta(days=1), POLICY) == ([], [])


def test_the_adr_notice_is_withheld_with_its_reason_on_a_vexatious_case() -> None:
    vexatious = case(
        flags=frozenset({"vexatious"}),
        update_interval_days=0,
        first_staff_reply_at=RECEIVED,
        level=Level.MANAGER,
    )
    effects, done = t.run_due(vexatious, RECEIVED + timedelta(weeks=9), POLICY)
    assert done == [Due.ADR_NOTICE_WITHHELD]
    assert changed(effects)["adr_notice_decision"] == "not sent: the case is vexatious"
    assert letters_to_customer(effects) == []


def test_one_letter_to_the_customer_in_a_tick_counts_as_the_days_update() -> None:
    """The escalation notice tells the customer where things stand: no update beside it."""
    late = RECEIVED + timedelta(days=15)
    effects, done = t.run_due(case(first_staff_reply_at=RECEIVED), late, POLICY)
    assert Due.ESCALATION in done and Due.UPDATE not in done
    assert letters_to_customer(effects) == [MessageKind.ESCALATION_NOTICE]


def test_an_update_held_back_still_counts_the_day_as_done() -> None:
    tuesday = datetime(2026, 3, 3, 16, 30, tzinfo=UTC)
    state = case(first_staff_reply_at=RECEIVED, held="the address bounced (5.1.1)")
    effects, done = t.run_due(state, tuesday, POLICY)
    assert done == [Due.UPDATE]
    assert changed(effects) == {"last_customer_contact_at": tuesday}
    assert actions(effects) == [], "no 'update sent' for a letter that did not go"


def test_staff_commands_apply_in_order_each_on_the_state_the_last_left() -> None:
    reply = read_commands(
        "#escalate the customer asked\n#resolve refunded\nThanks, Pat", Role.MANAGER
    )
    effects, done = t.staff_replied(case(), MANAGER, reply, frozenset(), RECEIVED, POLICY)
    assert actions(effects) == [
        "escalated",
        "#escalate",
        "resolved",
        "#resolve",
        t.RELAYED,  # with its words, which the next update quotes
    ]
    assert letters_to_customer(effects) == [MessageKind.ESCALATION_NOTICE, MessageKind.RESOLUTION]
    assert [type(e) for e in effects if isinstance(e, fx.Relay)] == [fx.Relay]
    assert done[-1] == "sent your reply to pat@example.com"
    assert changed(effects)["first_staff_reply_at"] == RECEIVED


def test_marking_a_case_vexatious_refuses_a_pending_deadlock_request() -> None:
    pending = case(deadlock_requested_at=RECEIVED)
    reply = read_commands("#vexatious abusive calls", Role.TEAM_LEADER)
    effects, done = t.staff_replied(pending, LEADER, reply, frozenset(), RECEIVED, POLICY)
    assert changed(effects)["flags"] == frozenset({"vexatious"})
    assert letters_to_customer(effects) == [MessageKind.DEADLOCK_REFUSAL]
    assert done == [
        "marked the complaint vexatious: abusive calls; told the customer why no "
        "deadlock letter will be sent"
    ]


def test_a_reply_all_that_reached_the_customer_is_recorded_not_sent_again() -> None:
    reply = read_commands("We have booked an engineer.", Role.TEAM_LEADER)
    effects, done = t.staff_replied(
        case(), LEADER, reply, frozenset({"pat@example.com"}), RECEIVED, POLICY
    )
    assert not [e for e in effects if isinstance(e, fx.Relay)]
    assert actions(effects) == ["wrote to the customer directly"]
    assert done == ["noted that you wrote to pat@example.com directly (not sent again)"]


def test_a_reply_to_an_address_no_server_can_take_says_so_in_the_confirmation() -> None:
    reply = read_commands("We have booked an engineer.", Role.TEAM_LEADER)
    garbled = case(customer_email="pat example.com", addresses=frozenset({"pat example.com"}))
    _, done = t.staff_replied(garbled, LEADER, reply, frozenset(), RECEIVED, POLICY)
    assert done[0].startswith("could not send your reply to pat example.com: cannot address")


def test_commands_the_case_cannot_take_are_refused_with_reasons() -> None:
    resolved = case(status=CaseStatus.RESOLVED, level=Level.MANAGER)
    reply = read_commands(
        "#resolve done\n#escalate why\n#deadlock refuse no\n"
        "#customer-address terry@provider.example",
        Role.MANAGER,
    )
    assert t.staff_refusals(resolved, reply, RECEIVED, POLICY) == [
        "CMP-2026-00001 is already resolved",
        "CMP-2026-00001 is already at Manager level",
        "terry@provider.example is a staff address; staff mail is never the customer's",
        "CMP-2026-00001 has no deadlock letter request waiting for a decision",
    ]
    assert t.staff_refusals(None, read_commands("#resolve x", Role.MANAGER), RECEIVED, POLICY)[
        0
    ].startswith("this message names no case")


def test_a_permanent_bounce_stops_automated_mail_and_tells_the_handlers() -> None:
    effects = t.bounced("pat@example.com 5.1.1 permanent", [("pat@example.com", "5.1.1 bounce")])
    assert fx.Suppress("pat@example.com", "5.1.1 bounce") in effects
    assert [e.headline for e in effects if isinstance(e, fx.Notify)] == [
        "Mail to the customer bounced"
    ]
    assert kinds(t.bounced("pat@example.com 4.2.2 temporary", [])) == [fx.Attach]
