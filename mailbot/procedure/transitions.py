"""A case's life as pure transitions: (case state, what happened, now, policy) -> effects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from mailbot.mail.compose import cannot_address
from mailbot.mail.parse import Address
from mailbot.mail.trim import split_sign_off
from mailbot.procedure import rules
from mailbot.procedure.case import CaseState, ReturnedLetter
from mailbot.procedure.commands import Command, StaffReply
from mailbot.procedure.details import Detail
from mailbot.procedure.effects import (
    Acknowledge,
    Attach,
    Change,
    Effect,
    LetterHeld,
    Notify,
    NotifyThirdParty,
    OnCase,
    Record,
    Relay,
    Suppress,
    ToCustomer,
    ToPrint,
    ToRole,
    Undelivered,
)
from mailbot.procedure.needs import NONE, SUPPORT, Need, letter_format, with_format
from mailbot.procedure.personal_data import (
    DATA_PROTECTION,
    EXTENSION_MONTHS,
    Noticed,
    subject_access_due,
)
from mailbot.procedure.policy import Policy
from mailbot.procedure.rules import Due, RemedyStage
from mailbot.procedure.vocabulary import CaseStatus, Level, MessageKind, StaffMember

RULE = "mailbot"  # the actor of what the rules do by themselves
GENERIC_POSITION = (
    "We have investigated your complaint and we have not been able to resolve it to your "
    "satisfaction. We believe we have done everything we reasonably can."
)
CHASED = "deadlock letter chased"
# what a member of staff said to the customer, kept on the case with their words (the update
# quotes the latest, and its writer signs the letters that follow)
RELAYED, WROTE_DIRECTLY = "reply relayed to the customer", "wrote to the customer directly"
SAID_TO_CUSTOMER = (
    RELAYED,
    WROTE_DIRECTLY,
)  # a request again while the first waits for its decision
# what the ends of a complaint record, as the report reads them
NOT_A_COMPLAINT, MERGED_INTO, MERGED_IN = "not a complaint", "merged into", "merged in"
ADR_REFERRED, ADR_OUTCOME = "referred to the ADR scheme", "adr scheme decided"
REMEDY_DONE, REMEDY_REMINDED, REMEDY_LATE = "remedy done", "remedy reminder", "remedy late"
REQUESTED_AGAIN = "deadlock letter requested again"
# what the data protection officer's work records, as the report reads it
PERSONAL_DATA = "complaint about personal data"
SAR_RECEIVED, SAR_AGAIN = "subject access request received", "subject access request again"
SAR_ANSWERED, SAR_EXTENDED = "subject access request answered", "subject access request extended"
SAR_REMINDED, SAR_LATE = "subject access request reminder", "subject access request late"
ON_TIME, LATE = "on time", "late"  # how an answer's event detail starts
# the rule's own record of how an answer stood (kept by erasure, unlike the staff's note)
SAR_ANSWERED_ON_TIME = f"{SAR_ANSWERED} {ON_TIME}"
SAR_ANSWERED_LATE = f"{SAR_ANSWERED} {LATE}"
UNDELIVERED, SENT_BY_POST = "letter undelivered", "sent by post"
# a case's status in words, for staff ("CMP-2026-000001 is ...")
STATUS_WORDS = {
    CaseStatus.OPEN: "open",
    CaseStatus.FINAL_RESPONSE: "closed with our final response (the deadlock letter)",
    CaseStatus.WITH_ADR: "with the ADR scheme",
    CaseStatus.RESOLVED: "resolved",
    CaseStatus.NOT_A_COMPLAINT: "marked not a complaint",
    CaseStatus.MERGED: "merged into another case",
}
# where a complaint is still being worked: what #merge joins
WORKED = (CaseStatus.OPEN, CaseStatus.FINAL_RESPONSE, CaseStatus.WITH_ADR)
# the letters whose holding back the managers hear of at once: they must go another way
HELD_LETTERS = {
    MessageKind.ADR_NOTICE: "the ADR notice",
    MessageKind.DEADLOCK_LETTER: "the deadlock letter",
}


def evolve(state: CaseState, effects: Sequence[Effect], now: datetime) -> CaseState:
    """STATE after EFFECTS: their changes, and the customer's last contact if mail went."""
    for effect in effects:
        if isinstance(effect, Change):
            state = replace(state, **dict(effect.fields))
        elif (isinstance(effect, ToCustomer | Acknowledge) and not state.held) or (
            isinstance(effect, Relay) and not cannot_address(state.customer_email)
        ):
            state = replace(state, last_customer_contact_at=now)
    return state


def next_due_at(state: CaseState, now: datetime, policy: Policy) -> datetime | None:
    """The tick's index: when anything on the case could next fall due."""
    return rules.plan(state, now, policy.calendar, policy.limits).next_due_at


# -- what customers and others write ------------------------------------------------------


def opened(
    state: CaseState,
    actor: str,
    outline: str,
    missing: Sequence[Detail],
    attachments: Sequence[str],
    deadlock_words: str | None,
    reopened_from: str,
    now: datetime,
    policy: Policy,
    noticed: Noticed | None = None,
) -> list[Effect]:
    """R1/R2: a new case is acknowledged and its handlers told (the DPO too, when it is about
    personal data); R6 if it asks for a letter; a subject access request's clock starts."""
    headline = f"New complaint (follows {reopened_from})" if reopened_from else "New complaint"
    noticed = noticed or Noticed(now)
    effects: list[Effect] = [
        Attach(MessageKind.COMPLAINT, actor),
        *about_personal_data(state, actor, noticed),
        *subject_access_requested(state, actor, noticed, policy),
        Acknowledge(tuple(missing)),
        Notify(headline, outline, tuple(missing), tuple(attachments), noticed.support),
    ]
    if deadlock_words:
        effects += deadlock_requested(state, actor, deadlock_words, outline, now, policy)
    return effects


def too_late_to_reopen(state: CaseState, received_at: datetime, policy: Policy) -> bool:
    """R7: a reply this long after resolution opens a new case instead."""
    resolved = state.resolved_at
    window = timedelta(days=policy.reopen_days)
    return state.resolved and resolved is not None and received_at - resolved > window


def customer_replied(
    state: CaseState,
    actor: str,
    new_text: str,
    attachments: Sequence[str],
    deadlock_words: str | None,
    now: datetime,
    policy: Policy,
    noticed: Noticed | None = None,
) -> list[Effect]:
    """A reply from the customer: reopens a resolved case (R7), asks for a letter (R6), or
    goes to the handlers; about personal data, the DPO has the case from then on."""
    noticed = noticed or Noticed(now)
    effects: list[Effect] = []
    headline = "Customer replied"
    if state.silenced:  # not a complaint: kept on the case, nobody written to
        return [Attach(MessageKind.CUSTOMER_REPLY, actor, f"kept: the case is {state.status}")]
    if state.resolved:
        why = f"customer replied within {policy.reopen_days} days of resolution"
        effects += reopen(state, actor, why)
        headline = "Customer replied; case reopened"
    effects.append(Attach(MessageKind.CUSTOMER_REPLY, actor))
    effects += about_personal_data(state, actor, noticed)
    effects += subject_access_requested(state, actor, noticed, policy)
    state = evolve(state, effects, now)
    if deadlock_words and not state.open:  # the final response went: staff decide, not us
        sent = state.deadlock_sent_at
        letter = f"sent {policy.calendar.day(sent)}" if sent else "none sent"
        effects.append(Record(actor, REQUESTED_AGAIN, deadlock_words))
        headline = f"Customer replied, asking for the deadlock letter ({letter})"
    elif deadlock_words:
        return effects + deadlock_requested(state, actor, deadlock_words, new_text, now, policy)
    notify = Notify(headline, new_text, attachments=tuple(attachments), support=noticed.support)
    return [*effects, notify]


def stranger_wrote(
    writer: Address, new_text: str, attachments: Sequence[str], deadlock_words: str | None
) -> list[Effect]:
    """Mail naming a case from neither its customer nor staff: kept, the handlers told.

    It reopens nothing, asks for nothing and gets no answer (a stranger could be anyone):
    the handlers decide, and #customer-address makes the address the customer's.
    """
    why = f"third-party mail: {writer.email} is neither the customer nor staff"
    return [
        Attach(MessageKind.THIRD_PARTY, writer.email, why),
        NotifyThirdParty(writer, new_text, deadlock_words, tuple(attachments)),
    ]


def bounced(
    failed: str,
    stopped: Sequence[tuple[str, str]],
    reason: str = "",
    state: CaseState | None = None,
    undelivered: Sequence[ReturnedLetter] = (),
) -> list[Effect]:
    """A bounce of our mail (FAILED: its recipients in words); the addresses STOPPED
    (address, reason) bounced permanently: no more automated mail there. Our letters it
    names that were UNDELIVERED are marked so; an ADR notice or deadlock letter among them is
    a duty not met: the managers are told at once to post it."""
    why = f"bounce: {failed or 'no recipient named'}"
    effects: list[Effect] = [Attach(MessageKind.BOUNCE, RULE, why, reason)]
    effects += [Suppress(address, reason) for address, reason in stopped]
    to_post = [k for k in (state.by_post_due.split(",") if state else []) if k]
    for letter in undelivered:
        effects += [
            Undelivered(letter.message_id, failed),
            Record(RULE, UNDELIVERED, f"{letter.kind} {letter.message_id}: {failed}"),
        ]
        if letter.kind in HELD_LETTERS and letter.kind not in to_post:
            to_post.append(letter.kind)
            effects += [
                Change({"by_post_due": ",".join(to_post)}),
                ToPrint(letter.message_id, letter.kind, failed),
            ]
    if stopped:
        effects.append(
            Notify(
                "Mail to the customer bounced",
                f"Our mail to {', '.join(a for a, _ in stopped)} bounced permanently "
                f"({failed}). mailbot sends no more automated mail there until one of you "
                "writes to that address; please find another way to reach the customer.",
            )
        )
    return effects


# -- the procedure's acts ------------------------------------------------------------------


def escalate(
    state: CaseState, actor: str, reason: str, now: datetime, policy: Policy
) -> list[Effect]:
    """R4: Manager level; the managers and the customer are told."""
    return [
        Change({"level": Level.MANAGER, "escalated_at": now}),
        ToRole("manager", MessageKind.ESCALATION_NOTICE, {"actor": actor, "reason": reason}),
        ToCustomer(
            MessageKind.ESCALATION_NOTICE,
            {"next_update": next_word_due(state, now, policy)},
        ),
        Record(actor, "escalated", reason),
    ]


def resolve(
    state: CaseState, actor: str, summary: str, now: datetime, policy: Policy
) -> list[Effect]:
    """R7: resolved; the customer gets the resolution; the timers stop."""
    return [
        Change({"status": CaseStatus.RESOLVED, "resolved_at": now, "resolution_summary": summary}),
        ToCustomer(
            MessageKind.RESOLUTION,
            {"reopen_days": policy.reopen_days, "adr_from": max(state.adr_date, now)},
            signed_by=actor,
        ),
        Record(actor, "resolved", summary),
    ]


def reopen(state: CaseState, actor: str, reason: str) -> list[Effect]:
    """Open again, its clocks as they were (the ADR date does not restart)."""
    changes: dict[str, Any] = {"status": CaseStatus.OPEN, "resolved_at": None}
    if state.adr_notice_sent_at is None and state.deadlock_sent_at is None:
        # R5 applies again to an unresolved complaint, unless the deadlock letter gave it
        changes |= {"adr_notice_decided_at": None, "adr_notice_decision": ""}
    return [Change(changes), Record(actor, "reopened", reason)]


def update(state: CaseState, now: datetime, policy: Policy) -> list[Effect]:
    """R3: tell the customer where their complaint stands, and when they hear next."""
    interval = state.update_interval_days
    letter = ToCustomer(MessageKind.UPDATE, {"next_update": next_word_due(state, now, policy)})
    if state.held:
        # held back (the address bounced, say; the case records why): the day counts as
        # done, or every tick would try again until someone finds another way through
        return [letter, Change({"last_customer_contact_at": now})]
    return [letter, Record(RULE, "update sent", f"interval {interval} working day(s)")]


def next_word_due(state: CaseState, now: datetime, policy: Policy) -> datetime:
    """When the customer next hears from us after a letter that goes NOW: R3's next update,
    or (routine updates stopped by agreement) the close of the next working day."""
    after = replace(state, last_customer_contact_at=now)
    calendar = policy.calendar
    due = rules.next_update_at(after, calendar, policy.limits)
    if due is None:
        day = calendar.working_days_after(now.astimezone(calendar.zone).date(), 1)
        due = datetime.combine(day, calendar.closing, tzinfo=calendar.zone)
    return due


def adr_notice(state: CaseState, now: datetime, policy: Policy) -> list[Effect]:
    """R5: the notice goes once; held back, it is decided all the same (never retried)."""
    weeks = policy.adr_wait_weeks
    effects: list[Effect] = [
        Change({"adr_notice_decided_at": now}),
        ToCustomer(MessageKind.ADR_NOTICE, {"weeks": weeks}),
    ]
    if state.held:
        return effects + letter_held(MessageKind.ADR_NOTICE, state.held)
    decision = f"sent: unresolved {weeks} weeks after receipt"
    return [
        *effects,
        Change({"adr_notice_sent_at": now, "adr_notice_decision": decision}),
        Record(RULE, "adr notice sent", decision),
    ]


def letter_held(kind: MessageKind, reason: str) -> list[Effect]:
    """An ADR notice or a deadlock letter held back (REASON): the case records it, and the
    managers are told at once, as it must reach the customer another way."""
    letter = HELD_LETTERS[kind]
    detail = f"{reason}; the managers were told to send it another way"
    effects: list[Effect] = []
    if kind == MessageKind.ADR_NOTICE:
        effects.append(Change({"adr_notice_decision": f"held back: {detail}"}))
    return [*effects, Record(RULE, f"{letter} held back", detail), LetterHeld(kind, reason)]


def not_taken(state: CaseState, kind: MessageKind, reason: str) -> list[Effect]:
    """An ADR notice or deadlock letter the mail server could not take after all: the case
    no longer says it went (a final response not given is no final response)."""
    if kind == MessageKind.ADR_NOTICE:
        changes: dict[str, Any] = {"adr_notice_sent_at": None}
    else:
        changes = {"deadlock_sent_at": None}
        if state.status == CaseStatus.FINAL_RESPONSE:
            changes["status"] = CaseStatus.OPEN
    return [Change(changes), *letter_held(kind, reason)]


def deadlock_requested(
    state: CaseState, actor: str, words: str, text: str, now: datetime, policy: Policy
) -> list[Effect]:
    """R6: record the request (ACTOR: the address that wrote) and tell the handlers at once."""
    if state.deadlock_sent_at is not None:  # one letter per case: a copy, not a new decision
        again = Record(actor, REQUESTED_AGAIN, words)
        return [again, *deadlock_letter(state, RULE, "a copy, as requested again", now, policy)]
    if state.deadlock_held_back:  # decided, but it never went: try again, as asked
        again = Record(actor, REQUESTED_AGAIN, words)
        why = "requested again after it was held back"
        return [again, *deadlock_letter(state, RULE, why, now, policy)]
    if state.deadlock_pending:
        return deadlock_chased(state, actor, words, text, policy)
    when = policy.calendar.when
    due = rules.deadlock_decision_due(now, policy.calendar, policy.limits)
    return [
        Change({"deadlock_requested_at": now}),
        Record(actor, "deadlock letter requested", words),
        Notify(
            "Customer asks for a deadlock letter",
            f'The customer asked for a deadlock letter ("{words}"). It goes automatically '
            f'{when(due)} unless you reply with "#deadlock refuse REASON", '
            f'"#vexatious REASON" or "#out-of-scope REASON"; "#deadlock" sends it now.\n\n{text}',
        ),
    ]


def deadlock_chased(
    state: CaseState, actor: str, words: str, text: str, policy: Policy
) -> list[Effect]:
    """R6: a request while one is pending keeps the first one's window; the handlers are
    told of the first chase only."""
    requested = state.deadlock_requested_at
    assert requested is not None
    when = policy.calendar.when
    chased = Record(actor, CHASED, f"{words}; requested {when(requested)}")
    if state.chased:
        return [chased]
    due = rules.deadlock_decision_due(requested, policy.calendar, policy.limits)
    return [
        chased,
        Notify(
            "Customer chased the deadlock letter",
            f'The customer asked again for the deadlock letter ("{words}"), first asked for '
            f"{when(requested)}. The decision is still due {when(due)}: the letter goes "
            'automatically then unless you reply with "#deadlock refuse REASON", '
            '"#vexatious REASON" or "#out-of-scope REASON"; "#deadlock" sends it now. '
            f"Further chases are recorded on the case without telling you again.\n\n{text}",
        ),
    ]


def deadlock_letter(
    state: CaseState, actor: str, why: str, now: datetime, policy: Policy, position: str = ""
) -> list[Effect]:
    """R6: the letter, or a copy of the one already sent; held back, it is decided all
    the same (the rules do not retry it) and the managers are told."""
    copy = state.deadlock_sent_at is not None
    effects: list[Effect] = []
    if not copy:  # a letter held back before keeps its position unless staff give one
        position = (
            position or state.deadlock_position or state.resolution_summary or GENERIC_POSITION
        )
        effects.append(Change({"deadlock_position": position}))
    effects.append(
        ToCustomer(
            MessageKind.DEADLOCK_LETTER,
            {
                "position": position if not copy else state.deadlock_position,
                "copy": copy,
                "sent_at": state.deadlock_sent_at or now,
            },
            signed_by=actor,
        )
    )
    if state.held:
        return effects + letter_held(MessageKind.DEADLOCK_LETTER, state.held)
    if not copy:
        effects.append(Change({"deadlock_sent_at": now}))
        if state.open:  # our final response: the rules' clocks stop on it
            effects.append(Change({"status": CaseStatus.FINAL_RESPONSE}))
    action = "deadlock letter copy sent" if copy else "deadlock letter sent"
    return [*effects, Record(actor, action, why)]


def refuse_deadlock(state: CaseState, actor: str, reason: str, now: datetime) -> list[Effect]:
    """R6: an exception recorded; the customer is told why, in writing."""
    return [
        Change({"deadlock_refused_at": now}),
        ToCustomer(MessageKind.DEADLOCK_REFUSAL, {"reason": reason}, signed_by=actor),
        Record(actor, "deadlock letter refused", reason),
    ]


# -- the rules' tick -----------------------------------------------------------------------


def first_response_overdue(state: CaseState, now: datetime) -> list[Effect]:
    """R2: the team leaders told that nobody has answered the customer in time."""
    return [
        Change({"first_response_overdue_sent_at": now}),
        ToRole("team_leader", MessageKind.FIRST_RESPONSE_OVERDUE),
        Record(
            RULE,
            "first response overdue",
            f"due {state.first_response_due.isoformat()}, no staff reply",
        ),
    ]


def run_due(state: CaseState, now: datetime, policy: Policy) -> tuple[list[Effect], list[Due]]:
    """Whatever the rules say is due on the case now, and what that was."""
    calendar, limits = policy.calendar, policy.limits
    effects: list[Effect] = []
    done: list[Due] = []
    for what in rules.plan(state, now, calendar, limits).due:
        step: list[Effect]
        if what is Due.FIRST_RESPONSE_OVERDUE:
            step = first_response_overdue(state, now)
        elif what is Due.ESCALATION:
            days = limits.auto_escalate_working_days
            step = escalate(state, RULE, f"unresolved after {days} working days (R4)", now, policy)
        elif what is Due.ADR_NOTICE:
            step = adr_notice(state, now, policy)
        elif what is Due.ADR_NOTICE_WITHHELD:
            step = adr_notice_withheld(state, now)
        elif what is Due.ADR_CASE_FILE_REMINDER:
            step = case_file_reminder(state, now, policy)
        elif what is Due.REMEDY_REMINDER:
            step = remedy_reminder(state, now, policy)
        elif what is Due.SUBJECT_ACCESS_REMINDER:
            step = subject_access_reminder(state, now, policy)
        elif what is Due.DEADLOCK_LETTER:
            window = limits.deadlock_decision_working_days
            why = f"requested, no exception recorded within {window} working day(s)"
            step = deadlock_letter(state, RULE, why, now, policy)
        else:  # Due.UPDATE
            if Due.UPDATE not in rules.plan(state, now, calendar, limits).due:
                continue  # another letter of this run already told the customer
            step = update(state, now, policy)
        effects += step
        state = evolve(state, step, now)
        done.append(what)
    return effects, done


def adr_notice_withheld(state: CaseState, now: datetime) -> list[Effect]:
    """R5: the notice decided without a letter, and why (an exception, or how it ended)."""
    reason = rules.adr_exception(state) or "?"
    decision = f"not sent: {rules.WITHHELD.get(reason, reason)}"
    return [
        Change({"adr_notice_decided_at": now, "adr_notice_decision": decision}),
        Record(RULE, "adr notice withheld", decision),
    ]


# -- how a complaint ends ------------------------------------------------------------------
# 1. Final response: once the deadlock letter went (#deadlock, or R6's window ran out), the
#    case is final_response: no update, escalation, R2 notice or ADR notice (recorded as
#    decided: the deadlock letter gave the scheme); the customer's mail still reaches staff,
#    nothing automatic goes back. #reopen (clocks as they were) or #resolve end it.
# 2. With the ADR scheme: #adr SCHEME-REF [DATE] (after our final response, the ADR date,
#    or resolution); no letter to the customer; the handlers and managers reminded the
#    working day before the case file's DATE. #adr-outcome: a remedy due policy.remedy_days
#    later (managers reminded 7 days and 1 working day before, alerted when late), or with
#    nothing to do the case resolved; #remedy-done resolves it. No letter in this stage.
# 3. Not a complaint: #not-a-complaint REASON: no letter of any kind to anyone about it,
#    timers stopped (R5 decided now); #reopen undoes it.
# 4. Merged: #merge CMP-REF on either case: the one received first carries on with every
#    clock; the other is merged (its later mail threads onto the first); the customer gets
#    one letter naming the reference to use.
# 5. Every timer runs from the tick (`mailbot tick` queues the weekly digest too).


def not_a_complaint(state: CaseState, actor: str, reason: str, now: datetime) -> list[Effect]:
    """Spam, a sales offer, a misdirected enquiry: no letter of any kind from now on."""
    effects: list[Effect] = [
        Change({"status": CaseStatus.NOT_A_COMPLAINT}),
        Record(actor, NOT_A_COMPLAINT, reason),
    ]
    if state.adr_notice_decided_at is None:  # decided now: its clock stops with the others
        effects += adr_notice_withheld(evolve(state, effects, now), now)
    return effects


def merge(state: CaseState, other: CaseState, actor: str, now: datetime) -> list[Effect]:
    """STATE and OTHER are one complaint: the one received first carries on with its
    reference and every clock, whichever the command came on; the other is merged into it.
    The customer gets one short letter naming the reference to use."""
    first, later = sorted((state, other), key=lambda c: (c.received_at, c.ref))
    joined: list[Effect] = [
        Change({"status": CaseStatus.MERGED, "merged_into": first.ref}),
        Record(actor, MERGED_INTO, first.ref),
    ]
    if later.adr_notice_decided_at is None:
        merged = evolve(later, joined, now)
        joined += adr_notice_withheld(merged, now)
    carried: dict[str, Any] = {"addresses": first.addresses | later.addresses}
    if later.deadlock_pending and first.deadlock_requested_at is None:  # R6 is not lost
        carried["deadlock_requested_at"] = later.deadlock_requested_at
    carries: list[Effect] = [
        Change(carried),
        ToCustomer(MessageKind.MERGE_NOTICE, {"merged_ref": later.ref}, signed_by=actor),
        Record(actor, MERGED_IN, later.ref),
    ]
    if state.ref == first.ref:
        return [*carries, OnCase(later.ref, tuple(joined))]
    return [*joined, OnCase(first.ref, tuple(carries))]


def adr_referred(
    state: CaseState, actor: str, scheme_ref: str, case_file_due: date | None, now: datetime
) -> list[Effect]:
    """The scheme told us the customer referred the complaint: no letter to the customer."""
    detail = f"scheme reference {scheme_ref}" + (
        f"; case file due {case_file_due.isoformat()}" if case_file_due else ""
    )
    return [
        Change(
            {
                "status": CaseStatus.WITH_ADR,
                "adr_scheme_ref": scheme_ref,
                "adr_referred_at": now,
                "adr_case_file_due": case_file_due,
                "adr_case_file_reminded_at": None,
            }
        ),
        Record(actor, ADR_REFERRED, detail),
    ]


def adr_decided(
    state: CaseState, actor: str, outcome: str, remedy: str, now: datetime, policy: Policy
) -> list[Effect]:
    """The scheme's decision, as the customer accepted it: a remedy to carry out within
    policy.remedy_days, or (nothing to do) the case resolved with the outcome as summary."""
    words = outcome.replace("_", " ")
    effects: list[Effect] = [
        Change({"adr_outcome": outcome, "adr_outcome_at": now}),
        Record(actor, ADR_OUTCOME, f"{words}: {remedy}" if remedy else words),
    ]
    if outcome == "not_upheld" or not remedy:
        return effects + quietly_resolved(actor, f"ADR scheme: {words}", now)
    day = now.astimezone(policy.calendar.zone).date()
    due = day + timedelta(days=policy.remedy_days)
    return [*effects, Change({"remedy": remedy, "remedy_due": due, "remedy_told": ""})]


def remedy_done(state: CaseState, actor: str, note: str, now: datetime) -> list[Effect]:
    """We did what the scheme decided: the case is resolved with the outcome as summary."""
    words = state.adr_outcome.replace("_", " ")
    summary = f"ADR scheme: {words}; remedy done: {note}"
    return [
        Change({"remedy_done_at": now}),
        Record(actor, REMEDY_DONE, note),
        *quietly_resolved(actor, summary, now),
    ]


def quietly_resolved(actor: str, summary: str, now: datetime) -> list[Effect]:
    """Resolved without a letter: the ADR scheme, not we, told the customer its decision."""
    return [
        Change({"status": CaseStatus.RESOLVED, "resolved_at": now, "resolution_summary": summary}),
        Record(actor, "resolved", summary),
    ]


def case_file_reminder(state: CaseState, now: datetime, policy: Policy) -> list[Effect]:
    """The ADR scheme wants our case file: the handlers and the managers are reminded."""
    due = state.adr_case_file_due
    assert due is not None
    today = now.astimezone(policy.calendar.zone).date()
    when = "passed" if due < today else "today" if due == today else "coming"
    return [
        Change({"adr_case_file_reminded_at": now}),
        ToRole(
            "manager",
            MessageKind.ADR_CASE_FILE_DUE,
            {"due": due, "scheme_ref": state.adr_scheme_ref, "when": when},
            also_handlers=True,
        ),
        Record(RULE, "adr case file reminder", f"due {due.isoformat()} ({when})"),
    ]


def remedy_reminder(state: CaseState, now: datetime, policy: Policy) -> list[Effect]:
    """The scheme's remedy: the managers reminded a week and a working day before, and
    alerted the day after if it is not done."""
    stage, _ = rules.remedy_stage(state, now, policy.calendar)
    due = state.remedy_due
    assert stage is not None and due is not None
    action = REMEDY_LATE if stage is RemedyStage.LATE else REMEDY_REMINDED
    return [
        Change({"remedy_told": stage}),
        ToRole(
            "manager",
            MessageKind.REMEDY_DUE,
            {"stage": stage.value, "due": due, "remedy": state.remedy},
        ),
        Record(RULE, action, f"due {due.isoformat()}: {state.remedy}"),
    ]


# -- staff replies -------------------------------------------------------------------------


def staff_refusals(
    state: CaseState | None,
    reply: StaffReply,
    now: datetime,
    policy: Policy,
    named: Mapping[str, CaseState] | None = None,
) -> list[str]:
    """Why the commands of REPLY cannot be done on the case as it stands (none: they can);
    NAMED: the cases the commands name (#merge's), as the load stage found them."""
    names = [c.name for c in reply.commands]
    if state is None:
        if names != ["new"]:
            return [
                "this message names no case: reply to a case's mail (keep the [reference] "
                "in the subject), or open one for a postal or phone complaint with "
                '"#new customer@example.com Name"'
            ]
        return [] if reply.text.strip() else ["#new needs the complaint's outline below it"]
    errors = []
    ref, status = state.ref, state.status
    now_is = f"{ref} is {STATUS_WORDS[status]}"
    if "new" in names:
        errors.append(f"#new is for a message with no case; this one is on {ref}")
    if "release" in names:
        errors.append(f"#release answers the held-list letter; this message is on {ref}")
    if state.silenced:
        allowed = {"note", "reopen"} if status == CaseStatus.NOT_A_COMPLAINT else {"note"}
        for name in sorted(set(names) - allowed - {"new", "release"}):
            where = f": write on {state.merged_into}" if state.merged_into else ""
            undo = ' ("#reopen REASON" first)' if "reopen" in allowed else ""
            errors.append(f"#{name} does not apply: {now_is}{where}{undo}")
        if "reopen" in names and "reopen" not in allowed:
            errors.append(f"#reopen does not apply: {now_is}: write on {state.merged_into}")
        return errors
    if "resolve" in names and state.resolved:
        errors.append(f"{ref} is already resolved")
    if "resolve" in names and status == CaseStatus.WITH_ADR:
        errors.append(f'{now_is}: record its decision with "#adr-outcome", not "#resolve"')
    if "reopen" in names and status in (CaseStatus.OPEN, CaseStatus.WITH_ADR):
        errors.append(f"{now_is}, there is nothing to reopen")
    if "escalate" in names and state.level == Level.MANAGER:
        errors.append(f"{ref} is already at Manager level")
    elif "escalate" in names and not state.open:
        errors.append(f"{now_is}: there is nothing to escalate")
    if "not-a-complaint" in names and not state.open:
        errors.append(f"{now_is}: #not-a-complaint is for an open case")
    for accepted in (c.address for c in reply.commands if c.name == "customer-address"):
        if accepted in policy.staff_addresses:
            errors.append(f"{accepted} is a staff address; staff mail is never the customer's")
        elif accepted in state.addresses:
            errors.append(f"{accepted} is already the customer's address on {ref}")
    refusing = any(c.name == "deadlock" and c.refusal is not None for c in reply.commands)
    if refusing and not state.deadlock_pending:
        errors.append(f"{ref} has no deadlock letter request waiting for a decision")
    elif "deadlock" in names and status == CaseStatus.WITH_ADR:
        errors.append(f"{now_is}: no deadlock letter now")
    for merging in (c.reference for c in reply.commands if c.name == "merge"):
        errors += _merge_refusals(state, merging, (named or {}).get(merging))
    if "adr" in names:
        errors += _adr_refusals(state, now, policy)
    if "adr-outcome" in names and (status != CaseStatus.WITH_ADR or state.adr_outcome):
        outcome = state.adr_outcome.replace("_", " ")
        decided = f" (its decision: {outcome})" if outcome else ""
        errors.append(f"{now_is}{decided}: #adr-outcome is for a case with the ADR scheme")
    if "remedy-done" in names and not (status == CaseStatus.WITH_ADR and state.remedy_pending):
        errors.append(f"{now_is}: no remedy the ADR scheme decided is waiting on it")
    for name in ("sar-done", "sar-extend"):
        if name in names and not state.sar_pending:
            errors.append(f"{ref} has no subject access request waiting for its answer")
    if "sar-extend" in names and state.sar_pending and state.sar_extended_at is not None:
        errors.append(
            f"{ref}'s subject access request was already extended (once only): due {state.sar_due}"
        )
    removing = any(c.name == "needs" and c.need == NONE for c in reply.commands)
    if removing and not state.needs:
        errors.append(f"{ref} has no support need recorded to remove")
    if "sent-by-post" in names and not state.by_post_due:
        errors.append(f"{ref} has no bounced ADR notice or deadlock letter waiting to be posted")
    return errors


def _merge_refusals(state: CaseState, ref: str, other: CaseState | None) -> list[str]:
    if ref == state.ref:
        return [f"#merge names {ref} itself: name the other case"]
    if other is None:
        return [f"#merge names {ref}, which is no case"]
    if other.status == CaseStatus.MERGED:
        return [f"{ref} was merged into {other.merged_into}: merge onto {other.merged_into}"]
    return [
        f"{case.ref} is {STATUS_WORDS[case.status]}: only cases still being worked merge "
        '("#reopen REASON" it first)'
        for case in (state, other)
        if case.status not in WORKED
    ]


def _adr_refusals(state: CaseState, now: datetime, policy: Policy) -> list[str]:
    """The ADR scheme takes a complaint after our final response or once the ADR date has
    come (or a resolved one the customer is unhappy with)."""
    if state.status == CaseStatus.WITH_ADR:
        return [f"{state.ref} is already with the ADR scheme (reference {state.adr_scheme_ref})"]
    if state.open and state.deadlock_sent_at is None and now < state.adr_date:
        return [
            f"{state.ref} is open, with no final response, and its ADR date "
            f"({policy.calendar.day(state.adr_date)}) has not come: the scheme would not take "
            "it yet"
        ]
    return []


def staff_command(
    state: CaseState,
    command: Command,
    member: StaffMember,
    now: datetime,
    policy: Policy,
    named: Mapping[str, CaseState] | None = None,
) -> tuple[list[Effect], str]:
    """Change the case as COMMAND says, record who did it, and say what was done."""
    name, argument, actor = command.name, command.argument, member.email
    effects: list[Effect]
    if name == "note":
        effects, done = [], "kept your message as an internal note; it went to nobody"
    elif name == "resolve":
        effects = resolve(state, actor, argument, now, policy)
        done = f"resolved the case and sent the customer the resolution: {argument}"
    elif name == "reopen":
        effects, done = reopen(state, actor, argument), f"reopened the case: {argument}"
    elif name == "not-a-complaint":
        effects = not_a_complaint(state, actor, argument, now)
        done = f"marked it not a complaint: no letter of any kind goes to the sender ({argument})"
    elif name == "merge":
        other = (named or {})[command.reference]
        effects = merge(state, other, actor, now)
        first, later = sorted((state, other), key=lambda c: (c.received_at, c.ref))
        done = (
            f"merged {later.ref} into {first.ref} (received first, it keeps every clock) and "
            f"told the customer to use {first.ref}"
        )
    elif name == "adr":
        due = command.case_file_due
        effects = adr_referred(state, actor, command.reference, due, now)
        done = f"recorded that the ADR scheme has the complaint (reference {command.reference})"
        if due is not None:
            done += f"; you will be reminded the working day before the case file's date, {due}"
    elif name == "adr-outcome":
        effects = adr_decided(state, actor, command.outcome, command.rest, now, policy)
        after = evolve(state, effects, now)
        done = f"recorded the ADR scheme's decision: {command.outcome.replace('_', ' ')}"
        if after.remedy_due is not None:
            done += f"; the remedy is due by {after.remedy_due:%-d %B %Y}: {after.remedy}"
        else:
            done += "; the case is resolved"
    elif name == "remedy-done":
        effects = remedy_done(state, actor, argument, now)
        done = f"recorded the remedy as done and resolved the case: {argument}"
    elif name == "sent-by-post":
        letters = " and ".join(HELD_LETTERS[MessageKind(k)] for k in state.by_post_due.split(","))
        posted = f"{letters} posted on {command.posted_on.isoformat()}"
        effects = [Change({"by_post_due": ""}), Record(actor, SENT_BY_POST, posted)]
        done = f"recorded {posted}"
    elif name == "escalate":
        effects = escalate(state, actor, argument, now, policy)
        done = f"escalated the case to Manager level and told the customer: {argument}"
    elif name == "updates":
        days = command.update_interval
        effects = [Change({"update_interval_days": days, "update_interval_agreed_by": actor})]
        done = (
            "stopped routine updates, as agreed with the customer"
            if days == 0
            else f"set updates to every {days} working day{'s' if days > 1 else ''}"
        )
    elif name in ("vexatious", "out-of-scope"):
        effects = [Change({"flags": state.flags | {name.replace("-", "_")}})]
        done = f"marked the complaint {name.replace('-', ' ')}: {argument}"
        if state.deadlock_pending:
            effects += refuse_deadlock(state, actor, argument, now)
            done += "; told the customer why no deadlock letter will be sent"
    elif name == "deadlock":
        refusal = command.refusal
        if refusal is not None:
            effects = refuse_deadlock(state, actor, refusal, now)
            done = f"refused the deadlock letter and told the customer why: {refusal}"
        else:
            copy = state.deadlock_sent_at is not None
            effects = deadlock_letter(
                state, actor, "issued by staff", now, policy, position=argument
            )
            done = (
                "sent a copy of the deadlock letter (one per case)"
                if copy
                else "sent the deadlock letter"
            )
    elif name in ("needs", "support"):
        effects, done = needs_recorded(state, command, member, now)
    elif name == "sar-done":
        effects = subject_access_answered(state, actor, argument, now, policy)
        done = f"recorded the subject access request as answered: {argument}"
    elif name == "sar-extend":
        effects = subject_access_extended(state, actor, argument, now, policy)
        after = evolve(state, effects, now)
        done = (
            f"extended the subject access request to {after.sar_due:%-d %B %Y} and told the "
            f"customer why: {argument}"
        )
    elif name == "customer-address":
        effects = [Change({"addresses": state.addresses | {command.address}})]
        done = (
            f"accepted {command.address} as the customer's address: mail from it now "
            f"counts as theirs (letters still go to {state.customer_email})"
        )
    else:  # pragma: no cover - read_commands admits only known commands
        raise AssertionError(name)
    return [*effects, Record(actor, f"#{name}", argument)], done


def staff_replied(
    state: CaseState,
    member: StaffMember,
    reply: StaffReply,
    recipients: frozenset[str],
    now: datetime,
    policy: Policy,
    named: Mapping[str, CaseState] | None = None,
) -> tuple[list[Effect], list[str]]:
    """A verified staff reply on the case: its commands in order, then its words relayed to
    the customer (unless it is a note, reply-all reached them already, or the case is not a
    complaint); and what was done, for the confirmation."""
    names = {c.name for c in reply.commands}
    kind = MessageKind.STAFF_NOTE if "note" in names else MessageKind.STAFF_REPLY
    effects: list[Effect] = [Attach(kind, member.email)]
    done = []
    for command in reply.commands:
        step, said = staff_command(state, command, member, now, policy, named)
        effects += step
        state = evolve(state, step, now)
        done.append(said)
    # what is left once commands, quotes and a sign-off are gone: nothing is no letter
    words = split_sign_off(reply.text, member.name).words
    if "note" not in {c.name for c in reply.commands} and words and state.silenced:
        done.append(
            f"did not send your words to the customer: {state.ref} is "
            f"{STATUS_WORDS[state.status]} (they are kept on the case)"
        )
    elif "note" not in {c.name for c in reply.commands} and words:
        step, said = relay(state, member, reply.text, recipients, now)
        effects += step
        done.append(said)
    if not done:
        done.append("recorded your message on the case (no text for the customer)")
    return effects, done


def relay(
    state: CaseState, member: StaffMember, text: str, recipients: frozenset[str], now: datetime
) -> tuple[list[Effect], str]:
    """A staff member's words to the customer; RECIPIENTS: whom their own mail went to."""
    words = split_sign_off(text, member.name).words
    effects: list[Effect] = []
    if state.first_staff_reply_at is None:
        effects.append(Change({"first_staff_reply_at": now}))
    if recipients & state.addresses:
        # reply-all already reached the customer: record it, do not send it twice
        effects += [
            Change({"last_customer_contact_at": now}),
            Record(member.email, WROTE_DIRECTLY, words),
        ]
        return effects, (
            f"noted that you wrote to {state.customer_email} directly (not sent again)"
        )
    effects.append(Relay(member, text))
    problem = cannot_address(state.customer_email)  # a person's words lift a bounce, not this
    if problem:
        return effects, (
            f"could not send your reply to {state.customer_email}: {problem}; it is kept on "
            "the case, please reach the customer another way"
        )
    effects.append(Record(member.email, RELAYED, words))
    return effects, f"sent your reply to {state.customer_email}"


# -- personal data and support needs ------------------------------------------------------
# 1. A complaint (or a reply) about the handling of personal data flags the case
#    data_protection: the DPO gets its copies as its handlers do, and the acknowledgement
#    says our data protection officer has it.
# 2. A request for a copy of one's data starts a subject access request: due one calendar
#    month after receipt (UK GDPR Art. 12(3)); the DPO told at once, reminded 7 days and the
#    working day before, alerted the day after when late; #sar-done ends it, #sar-extend adds
#    two months once and tells the customer why.
# 3. Needs are recorded by staff only (#needs FORMAT, #support NOTE; #needs none removes
#    them); the letters follow the format as they are written (correspondence.py).


def about_personal_data(state: CaseState, actor: str, noticed: Noticed) -> list[Effect]:
    """A complaint about the handling of personal data (or asking for a copy of it): the
    case is flagged once, so the DPO has it."""
    words = noticed.personal_data or noticed.subject_access
    if words is None or DATA_PROTECTION in state.flags:
        return []
    return [
        Change({"flags": state.flags | {DATA_PROTECTION}}),
        Record(actor, PERSONAL_DATA, words),
    ]


def subject_access_requested(
    state: CaseState, actor: str, noticed: Noticed, policy: Policy
) -> list[Effect]:
    """A request for a copy of the customer's personal data: due a calendar month after its
    receipt; the DPO is told at once. One waiting already: recorded, its clock stands."""
    words = noticed.subject_access
    if words is None:
        return []
    if state.sar_pending:
        return [Record(actor, SAR_AGAIN, f"{words}; due {state.sar_due}")]
    received = noticed.received_at.astimezone(policy.calendar.zone).date()
    due = subject_access_due(received)
    return [
        Change(
            {
                "sar_requested_at": noticed.received_at,
                "sar_due": due,
                "sar_extended_at": None,
                "sar_told": "",
                "sar_done_at": None,
            }
        ),
        Record(actor, SAR_RECEIVED, f"{words}; due {due.isoformat()}"),
        ToRole(
            "dpo",
            MessageKind.SUBJECT_ACCESS_DUE,
            {"stage": "new", "due": due, "words": words, "extended": False},
        ),
    ]


def subject_access_answered(
    state: CaseState, actor: str, note: str, now: datetime, policy: Policy
) -> list[Effect]:
    """#sar-done: the request answered, on time or late (the report counts which)."""
    due = state.sar_due
    assert due is not None
    day = now.astimezone(policy.calendar.zone).date()
    when = ON_TIME if day <= due else LATE
    return [
        Change({"sar_done_at": now}),
        Record(actor, SAR_ANSWERED, f"{when}: due {due.isoformat()}; {note}"),
        Record(RULE, f"{SAR_ANSWERED} {when}", f"due {due.isoformat()}"),
    ]


def subject_access_extended(
    state: CaseState, actor: str, reason: str, now: datetime, policy: Policy
) -> list[Effect]:
    """#sar-extend: two further months after the first (Art. 12(3)), once, counted from the
    receipt; the customer is told why, and the DPO's reminders start again."""
    requested = state.sar_requested_at
    assert requested is not None
    due = subject_access_due(requested.astimezone(policy.calendar.zone).date(), extended=True)
    return [
        Change({"sar_due": due, "sar_extended_at": now, "sar_told": ""}),
        ToCustomer(
            MessageKind.SUBJECT_ACCESS_EXTENDED,
            {"due": due, "reason": reason, "months": EXTENSION_MONTHS, "requested": requested},
            signed_by=actor,
        ),
        Record(actor, SAR_EXTENDED, f"due {due.isoformat()}: {reason}"),
    ]


def subject_access_reminder(state: CaseState, now: datetime, policy: Policy) -> list[Effect]:
    """The DPO reminded 7 days and the working day before a request is due, and alerted
    the day after when it is not answered."""
    stage, _ = rules.subject_access_stage(state, now, policy.calendar)
    due = state.sar_due
    assert stage is not None and due is not None
    action = SAR_LATE if stage is RemedyStage.LATE else SAR_REMINDED
    return [
        Change({"sar_told": stage}),
        ToRole(
            "dpo",
            MessageKind.SUBJECT_ACCESS_DUE,
            {
                "stage": stage.value,
                "due": due,
                "words": "",
                "extended": state.sar_extended_at is not None,
            },
        ),
        Record(RULE, action, f"due {due.isoformat()}"),
    ]


def needs_recorded(
    state: CaseState, command: Command, member: StaffMember, now: datetime
) -> tuple[list[Effect], str]:
    """#needs FORMAT [NOTE], #needs none, #support NOTE: recorded with who and when."""
    if command.name == "needs" and command.need == NONE:
        return [Change({"needs": ()})], "removed every support need recorded on the case"
    if command.name == "support":
        need = Need(SUPPORT, command.argument, member.email, now)
        done = f"recorded a support need: {command.argument}"
    else:
        need = Need(command.need, command.rest, member.email, now)
        done = f"recorded that the customer's letters go in {command.need}" + (
            f" ({command.rest})" if command.rest else ""
        )
    needs = with_format(state.needs, need)
    if letter_format(needs) and command.name == "needs":
        done += "; every letter to them follows it from now on"
    return [Change({"needs": needs})], done
