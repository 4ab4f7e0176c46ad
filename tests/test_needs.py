"""Issue 27, pure: words that suggest a need, complaints about personal data, subject access
requests and their dates, and the commands that record needs and end a request."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from mailbot.config import StaffSettings
from mailbot.procedure import rules
from mailbot.procedure import transitions as t
from mailbot.procedure.case import CaseState
from mailbot.procedure.commands import read_commands
from mailbot.procedure.effects import Change, Notify, Record, ToCustomer, ToRole
from mailbot.procedure.needs import Need, letter_format, support_sentences
from mailbot.procedure.personal_data import (
    Noticed,
    about_personal_data,
    asks_for_own_data,
    notice,
    subject_access_due,
)
from mailbot.procedure.rules import Due
from mailbot.procedure.vocabulary import CaseStatus, MessageKind, Role
from tests.test_transitions import LEADER as TEAM_LEADER
from tests.test_transitions import POLICY, case

# What customers write, in the words of published vulnerability guidance and complaints
# forums (Ofcom's "Treating vulnerable customers fairly", Citizens Advice case studies)
NEEDS_FOUND = [
    "I am registered blind and my screen reader cannot read your bills.",
    "My husband is partially sighted, so please send letters in large print.",
    "I'm profoundly deaf and cannot use the phone line you keep telling me to call.",
    "I have dyslexia and find long letters very hard to follow.",
    "My mother has dementia and I am her carer.",
    "I was diagnosed with cancer in March and I'm having chemotherapy.",
    "I suffer from anxiety and these calls make it worse.",
    "My wife passed away in January and the account was in her name.",
    "My dad died last month and you are still charging his account.",
    "I am disabled and housebound, the internet is my only contact.",
    "As a vulnerable customer I expected better.",
    "Could you send this in Braille please?",
    "Please write to me in an easy read format.",
    "I struggle with reading small print.",
    "My son is autistic and relies on the connection for school.",
    "I have a hearing aid and the engineer would not write anything down.",
    "I have mental health problems and I cannot cope with this any more.",
]
NO_NEED = [
    "I need my broadband fixed.",
    "My router died again last night.",
    "I can't see why this took three weeks.",
    "Your engineer disabled my landline by mistake.",
    "My account was disabled without warning.",
    "This is a deadlock, I want the ombudsman.",
    "The speed is terrible in the evenings, I need a refund.",
    "I am not vulnerable, I just want it fixed.",
]


@pytest.mark.parametrize("sentence", NEEDS_FOUND)
def test_words_that_suggest_a_need_are_quoted(sentence: str) -> None:
    text = f"Hello,\n\nMy broadband keeps dropping.\n{sentence}\nPlease fix it.\n"
    assert support_sentences(text) == (sentence,)


@pytest.mark.parametrize("sentence", NO_NEED)
def test_everyday_words_suggest_no_need(sentence: str) -> None:
    assert support_sentences(f"Hello. {sentence} Regards, Alice") == ()


def test_a_sentence_wrapped_over_lines_is_quoted_on_one() -> None:
    text = "Hello,\n\nI am registered\nblind and need your\nletters read out. Thanks.\n"
    assert support_sentences(text) == ("I am registered blind and need your letters read out.",)


@pytest.mark.parametrize(
    "text",
    [
        "You sent my bill to the wrong address, a data breach.",
        "This is a breach of data protection law.",
        "Under GDPR you must tell me who saw it.",
        "I opted out of marketing and you still phone me every day.",
        "Please delete all my personal data.",
        "My details were shared with a debt collector without my consent.",
        "I received someone else's bill in my email.",
    ],
)
def test_a_complaint_about_personal_data_is_found(text: str) -> None:
    assert about_personal_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "Please send me a copy of my bill.",
        "The data allowance on my plan is wrong.",
        "I want to protect my family from this awful service.",
    ],
)
def test_a_complaint_about_service_is_not_about_personal_data(text: str) -> None:
    assert about_personal_data(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "I am making a subject access request.",
        "Please send me a copy of all the personal data you hold about me.",
        "I want a copy of my data, including call recordings.",
        "Send me all the information you hold about me.",
    ],
)
def test_a_request_for_ones_own_data_is_found(text: str) -> None:
    assert asks_for_own_data(text)


def test_a_request_for_a_bill_is_no_subject_access_request() -> None:
    assert asks_for_own_data("Please send me a copy of my last bill and the contract.") is None


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2027, 1, 31), date(2027, 2, 28)),  # the 31st to a month without one
        (date(2028, 1, 31), date(2028, 2, 29)),  # a leap year
        (date(2028, 1, 29), date(2028, 2, 29)),
        (date(2027, 1, 29), date(2027, 2, 28)),
        (date(2027, 3, 31), date(2027, 4, 30)),
        (date(2026, 12, 15), date(2027, 1, 15)),  # across the year's end
        (date(2027, 2, 28), date(2027, 3, 28)),
    ],
)
def test_a_subject_access_request_is_due_one_calendar_month_after_receipt(
    received: date, due: date
) -> None:
    assert subject_access_due(received) == due


def test_an_extension_adds_two_months_counted_from_receipt() -> None:
    # 31 January: 28 February, then 30 April (not 28 April, two months after 28 February)
    assert subject_access_due(date(2027, 1, 31), extended=True) == date(2027, 4, 30)
    assert subject_access_due(date(2027, 11, 30), extended=True) == date(2028, 2, 29)


# -- transitions ------------------------------------------------------------------------------

RECEIVED = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)  # a Sunday; GMT


def fresh() -> CaseState:
    """A case whose complaint is settled (resolved): the access request's clock runs alone."""
    return case(status=CaseStatus.RESOLVED, resolved_at=RECEIVED, adr_notice_decided_at=RECEIVED)


def test_a_complaint_about_personal_data_is_flagged_and_the_dpo_told_of_an_access_request() -> None:
    state = fresh()
    noticed = notice(
        "You sent my bill to the wrong address. Please send me a copy of all the personal data "
        "you hold about me. I am registered blind.",
        RECEIVED,
    )
    effects = t.opened(state, "c@x", "text", [], [], None, "", RECEIVED, POLICY, noticed)
    flags = [e for e in effects if isinstance(e, Change) and "flags" in e.fields]
    assert flags and "data_protection" in flags[0].fields["flags"]
    [told] = [e for e in effects if isinstance(e, ToRole)]
    assert (told.role, told.kind) == ("dpo", MessageKind.SUBJECT_ACCESS_DUE)
    assert told.context["due"] == date(2027, 2, 28) and told.context["stage"] == "new"
    [notify] = [e for e in effects if isinstance(e, Notify)]
    assert notify.support == ("I am registered blind.",)
    # the flag and the request come before the acknowledgement, which names them
    kinds = [type(e).__name__ for e in effects]
    assert kinds.index("Change") < kinds.index("Acknowledge")


def test_a_second_request_while_one_waits_keeps_its_clock() -> None:
    state = replace(fresh(), sar_requested_at=RECEIVED, sar_due=date(2027, 2, 28))
    noticed = Noticed(RECEIVED + timedelta(days=5), subject_access="subject access request")
    effects = t.subject_access_requested(state, "c@x", noticed, POLICY)
    assert effects == [Record("c@x", t.SAR_AGAIN, "subject access request; due 2027-02-28")]


def test_the_dpo_is_reminded_a_week_and_the_working_day_before_and_alerted_when_late() -> None:
    state = replace(fresh(), sar_requested_at=RECEIVED, sar_due=date(2027, 2, 28))  # a Sunday
    told = []
    moment = RECEIVED
    while moment < datetime(2027, 3, 10, tzinfo=UTC):
        effects, done = t.run_due(state, moment, POLICY)
        if Due.SUBJECT_ACCESS_REMINDER in done:
            [letter] = [e for e in effects if isinstance(e, ToRole) and e.role == "dpo"]
            told.append((letter.context["stage"], moment.date()))
            state = t.evolve(state, effects, moment)
        moment += timedelta(hours=1)
    # 21 Feb is a Sunday: Monday 22nd; the working day before Sunday 28th is Friday 26th;
    # late: the opening after 28 February, Monday 1 March
    assert told == [
        ("week", date(2027, 2, 22)),
        ("day", date(2027, 2, 26)),
        ("late", date(2027, 3, 1)),
    ]
    plan = rules.plan(state, moment, POLICY.calendar, POLICY.limits)
    assert Due.SUBJECT_ACCESS_REMINDER not in plan.due


def test_an_answered_request_stops_the_reminders_and_says_whether_it_was_on_time() -> None:
    state = replace(fresh(), sar_requested_at=RECEIVED, sar_due=date(2027, 2, 28))
    reply = read_commands("#sar-done sent by recorded post", Role.DPO)
    assert reply.errors == ()
    member = StaffSettings(email="dpo@provider.example", name="Dee Protection", role="dpo")
    answered = datetime(2027, 2, 28, 12, 0, tzinfo=UTC)
    effects, _ = t.staff_command(state, reply.commands[0], member, answered, POLICY)
    state = t.evolve(state, effects, answered)
    [record] = [e for e in effects if isinstance(e, Record) and e.action == t.SAR_ANSWERED]
    assert record.detail.startswith("on time")
    plan = rules.plan(state, datetime(2027, 3, 5, tzinfo=UTC), POLICY.calendar, POLICY.limits)
    assert Due.SUBJECT_ACCESS_REMINDER not in plan.due
    late = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    state = replace(state, sar_done_at=None)
    effects, _ = t.staff_command(state, reply.commands[0], member, late, POLICY)
    assert any(isinstance(e, Record) and e.detail.startswith("late") for e in effects)


def test_an_extension_goes_once_and_tells_the_customer() -> None:
    state = replace(fresh(), sar_requested_at=RECEIVED, sar_due=date(2027, 2, 28))
    reply = read_commands("#sar-extend six years of call recordings", Role.TEAM_LEADER)
    now = datetime(2027, 2, 10, 10, 0, tzinfo=UTC)
    assert t.staff_refusals(state, reply, now, POLICY) == []
    effects, done = t.staff_command(state, reply.commands[0], TEAM_LEADER, now, POLICY)
    [letter] = [e for e in effects if isinstance(e, ToCustomer)]
    assert letter.kind == MessageKind.SUBJECT_ACCESS_EXTENDED
    assert letter.context["due"] == date(2027, 4, 30)
    assert "30 April 2027" in done
    state = t.evolve(state, effects, now)
    assert t.staff_refusals(state, reply, now, POLICY) == [
        f"{state.ref}'s subject access request was already extended (once only): due 2027-04-30"
    ]


def test_sar_commands_are_refused_where_no_request_waits() -> None:
    reply = read_commands("#sar-done done", Role.MANAGER)
    errors = t.staff_refusals(fresh(), reply, RECEIVED, POLICY)
    assert errors == [f"{fresh().ref} has no subject access request waiting for its answer"]


def test_needs_are_recorded_with_who_and_when_and_removed() -> None:
    now = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
    state = fresh()
    reply = read_commands("#needs large-print 20pt at least\n#support a call after 2pm", Role.AGENT)
    assert reply.errors == ()
    effects, _ = t.staff_replied(state, TEAM_LEADER, reply, frozenset(), now, POLICY)
    state = t.evolve(state, effects, now)
    assert state.needs == (
        Need("large-print", "20pt at least", TEAM_LEADER.email, now),
        Need("support", "a call after 2pm", TEAM_LEADER.email, now),
    )
    assert letter_format(state.needs) == "large-print"
    braille = read_commands("#needs braille", Role.AGENT)
    effects, _ = t.staff_replied(state, TEAM_LEADER, braille, frozenset(), now, POLICY)
    state = t.evolve(state, effects, now)
    assert [n.need for n in state.needs] == ["support", "braille"], "one format at a time"
    removed = read_commands("#needs none", Role.AGENT)
    effects, _ = t.staff_replied(state, TEAM_LEADER, removed, frozenset(), now, POLICY)
    state = t.evolve(state, effects, now)
    assert state.needs == ()
    assert t.staff_refusals(state, removed, now, POLICY) == [
        f"{state.ref} has no support need recorded to remove"
    ]


def test_an_unknown_format_is_refused_with_the_known_ones() -> None:
    reply = read_commands("#needs huge-font", Role.AGENT)
    assert reply.commands == ()
    assert "large-print, plain-text, braille, audio, easy-read, other or none" in reply.errors[0]


def test_the_dpo_may_act_on_a_case_as_a_team_leader_does() -> None:
    reply = read_commands("#escalate the breach needs a manager\n#resolve done", Role.DPO)
    assert reply.errors == () and [c.name for c in reply.commands] == ["escalate", "resolve"]
