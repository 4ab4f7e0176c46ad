"""A case's life as pure transitions: (case state, what happened, now, policy) -> effects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from mailbot.mail.compose import cannot_address
from mailbot.mail.parse import Address
from mailbot.mail.trim import split_sign_off
from mailbot.procedure import rules
from mailbot.procedure.case import CaseState
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
    Record,
    Relay,
    Suppress,
    ToCustomer,
    ToRole,
)
from mailbot.procedure.policy import Policy
from mailbot.procedure.rules import Due
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
) -> list[Effect]:
    """R1/R2: a new case is acknowledged and its handlers told; R6 if it asks for a letter."""
    headline = f"New complaint (follows {reopened_from})" if reopened_from else "New complaint"
    effects: list[Effect] = [
        Attach(MessageKind.COMPLAINT, actor),
        Acknowledge(tuple(missing)),
        Notify(headline, outline, tuple(missing), tuple(attachments)),
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
) -> list[Effect]:
    """A reply from the customer: reopens a resolved case (R7), asks for a letter (R6), or
    goes to the handlers."""
    effects: list[Effect] = []
    headline = "Customer replied"
    if state.resolved:
        why = f"customer replied within {policy.reopen_days} days of resolution"
        effects += reopen(state, actor, why)
        headline = "Customer replied; case reopened"
    effects.append(Attach(MessageKind.CUSTOMER_REPLY, actor))
    state = evolve(state, effects, now)
    if deadlock_words:
        return effects + deadlock_requested(state, actor, deadlock_words, new_text, now, policy)
    return [*effects, Notify(headline, new_text, attachments=tuple(attachments))]


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


def bounced(failed: str, stopped: Sequence[tuple[str, str]], reason: str = "") -> list[Effect]:
    """A bounce of our mail (FAILED: its recipients in words); the addresses STOPPED
    (address, reason) bounced permanently: no more automated mail there."""
    why = f"bounce: {failed or 'no recipient named'}"
    effects: list[Effect] = [Attach(MessageKind.BOUNCE, RULE, why, reason)]
    effects += [Suppress(address, reason) for address, reason in stopped]
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
    changes: dict[str, Any] = {"status": CaseStatus.OPEN, "resolved_at": None}
    if state.adr_notice_sent_at is None:  # R5 applies again to an unresolved complaint
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


def deadlock_requested(
    state: CaseState, actor: str, words: str, text: str, now: datetime, policy: Policy
) -> list[Effect]:
    """R6: record the request (ACTOR: the address that wrote) and tell the handlers at once."""
    if state.deadlock_sent_at is not None:  # one letter per case: a copy, not a new decision
        again = Record(actor, "deadlock letter requested again", words)
        return [again, *deadlock_letter(state, RULE, "a copy, as requested again", now, policy)]
    if state.deadlock_held_back:  # decided, but it never went: try again, as asked
        again = Record(actor, "deadlock letter requested again", words)
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
            reason = rules.adr_exception(state) or "?"
            decision = f"not sent: the case is {reason.replace('_', ' ')}"
            step = [
                Change({"adr_notice_decided_at": now, "adr_notice_decision": decision}),
                Record(RULE, "adr notice withheld", decision),
            ]
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


# -- staff replies -------------------------------------------------------------------------


def staff_refusals(state: CaseState | None, reply: StaffReply, policy: Policy) -> list[str]:
    """Why the commands of REPLY cannot be done on the case as it stands (none: they can)."""
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
    ref = state.ref
    if "new" in names:
        errors.append(f"#new is for a message with no case; this one is on {ref}")
    if "release" in names:
        errors.append(f"#release answers the held-list letter; this message is on {ref}")
    if "resolve" in names and state.resolved:
        errors.append(f"{ref} is already resolved")
    if "reopen" in names and not state.resolved:
        errors.append(f"{ref} is open, there is nothing to reopen")
    if "escalate" in names and state.level == Level.MANAGER:
        errors.append(f"{ref} is already at Manager level")
    for accepted in (c.address for c in reply.commands if c.name == "customer-address"):
        if accepted in policy.staff_addresses:
            errors.append(f"{accepted} is a staff address; staff mail is never the customer's")
        elif accepted in state.addresses:
            errors.append(f"{accepted} is already the customer's address on {ref}")
    refusing = any(c.name == "deadlock" and c.refusal is not None for c in reply.commands)
    if refusing and not state.deadlock_pending:
        errors.append(f"{ref} has no deadlock letter request waiting for a decision")
    return errors


def staff_command(
    state: CaseState, command: Command, member: StaffMember, now: datetime, policy: Policy
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
) -> tuple[list[Effect], list[str]]:
    """A verified staff reply on the case: its commands in order, then its words relayed to
    the customer (unless it is a note, or reply-all reached them already); and what was done,
    for the confirmation."""
    names = {c.name for c in reply.commands}
    kind = MessageKind.STAFF_NOTE if "note" in names else MessageKind.STAFF_REPLY
    effects: list[Effect] = [Attach(kind, member.email)]
    done = []
    for command in reply.commands:
        step, said = staff_command(state, command, member, now, policy)
        effects += step
        state = evolve(state, step, now)
        done.append(said)
    # what is left once commands, quotes and a sign-off are gone: nothing is no letter
    words = split_sign_off(reply.text, member.name).words
    if "note" not in {c.name for c in reply.commands} and words:
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
