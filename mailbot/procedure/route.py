"""The route: what one message means, from what was read, its case and who sent it -> effects.

One pure function decides every message: a robot's, staff's, one the mail platform called
spam or forged (held), the customer's, a stranger's about a case, or a new complaint. Each
branch returns effects; the applier writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailbot.mail.authentication import verify_sender
from mailbot.mail.classify import Sender
from mailbot.mail.compose import unsendable
from mailbot.mail.parse import Address, ParsedMessage
from mailbot.mail.read import Reading
from mailbot.procedure import transitions as t
from mailbot.procedure.case import CaseState, ReturnedLetter
from mailbot.procedure.commands import StaffReply, known, read_commands
from mailbot.procedure.deadlock import deadlock_request
from mailbot.procedure.details import Detail, find_details, missing_details
from mailbot.procedure.effects import (
    Attach,
    Change,
    Effect,
    Hold,
    Ignore,
    Open,
    Quarantine,
    Record,
    Release,
    Suppress,
    TooLarge,
    ToStaff,
)
from mailbot.procedure.personal_data import notice
from mailbot.procedure.policy import Policy
from mailbot.procedure.vocabulary import MessageKind, Role, StaffMember

MACHINE_KINDS = {
    Sender.BOUNCE: MessageKind.BOUNCE,
    Sender.READ_RECEIPT: MessageKind.READ_RECEIPT,
    Sender.REPORT: MessageKind.REPORT,
    Sender.AUTO_REPLY: MessageKind.AUTO_REPLY,
    Sender.MAILING_LIST: MessageKind.MAILING_LIST,
    Sender.NOTIFICATION: MessageKind.NOTIFICATION,
    Sender.OWN_MAIL: MessageKind.OWN_MAIL,
}


@dataclass(frozen=True)
class Arrival:
    """What the store knows of a message beside its bytes."""

    received_at: datetime
    size: int
    released_by: str = ""  # held, then released by this member of staff: never held again
    held_for: str = ""  # why it was held


@dataclass(frozen=True)
class Thread:
    """The case a message threads onto, as the store found it (None: it names none)."""

    case: CaseState | None = None
    # a bounce: the addresses our letters it names went to
    letters_to: frozenset[str] = frozenset()
    # the cases a staff member's commands name (#merge's), by reference, as found
    named: Mapping[str, CaseState] = field(default_factory=dict)
    # naming no case: the cases its sender opened on its day, and the latest of them
    opened_today: int = 0
    latest_today: CaseState | None = None
    # a staff reply's #release: the numbers it names that are held messages
    held: frozenset[int] = frozenset()
    # a bounce: our letters it names (by Message-ID, or by recipient and time)
    returned: tuple[ReturnedLetter, ...] = ()


def route(
    reading: Reading, arrival: Arrival, thread: Thread, now: datetime, policy: Policy
) -> list[Effect]:
    """What the message in hand means, as effects; the first is always where it goes."""
    effects = _route(reading, arrival, thread, now, policy)
    first = effects[0]
    if arrival.released_by and isinstance(first, Open | Attach):
        effects.append(Record(arrival.released_by, "released", f"held: {arrival.held_for}"))
        # held past its first response's due time: the team leaders are told now
        if isinstance(first, Open) and first.state.first_response_due <= now:
            effects += t.first_response_overdue(first.state, now)
    return effects


def _route(
    reading: Reading, arrival: Arrival, thread: Thread, now: datetime, policy: Policy
) -> list[Effect]:
    parsed, case = reading.parsed, thread.case
    if arrival.size > policy.max_message_bytes:
        return too_large(reading, arrival.size, policy.max_message_bytes)
    if reading.verdict.is_machine:
        return silence(case, machine(reading, thread)) if case else machine(reading, thread)
    sender = parsed.sender
    if sender is None or "@" not in sender.email:
        return [Quarantine(None, "no sender address")]
    member = policy.staff_member(sender.email)
    if member is not None:
        return staff_wrote(reading, arrival, thread, member, now, policy)
    customer = case is not None and sender.email.lower() in case.addresses
    held = "" if arrival.released_by else held_for(reading, customer)
    if held:
        return [Hold(held)]
    if case is not None and customer:
        return silence(case, customer_wrote(reading, arrival, case, now, policy))
    if case is not None:  # a [REF] or a thread header proves nothing: anyone can copy one
        return silence(case, stranger_wrote(reading, sender, policy))
    latest = thread.latest_today
    if latest is not None and thread.opened_today >= policy.new_cases_per_sender_per_day:
        return flooded(reading, arrival, latest, thread.opened_today, now, policy)
    return new_complaint(reading, arrival, sender, now, policy)


def held_for(reading: Reading, customer: bool) -> str:
    """Why the message is held, unanswered, for staff (mail.spam), or "": a forged sender
    always; the platform's spam verdict unless the case's own customer wrote, whose answer a
    filter's false alarm must not swallow."""
    spam = reading.spam
    return spam.forged or ("" if customer else spam.filtered)


def flooded(
    reading: Reading,
    arrival: Arrival,
    latest: CaseState,
    opened: int,
    now: datetime,
    policy: Policy,
) -> list[Effect]:
    """A sender over [limits] new_cases_per_sender_per_day: on their latest case, recorded."""
    limit = policy.new_cases_per_sender_per_day
    why = (
        f"{opened} cases opened today by this sender, the limit is {limit}"
        f" (limits.new_cases_per_sender_per_day): threaded onto {latest.ref}"
    )
    effects = silence(latest, customer_wrote(reading, arrival, latest, now, policy))
    return [*effects, Record(t.RULE, "flood", why)]


def silence(case: CaseState, effects: list[Effect]) -> list[Effect]:
    """A case that is not a complaint (or was merged) writes to nobody, staff included:
    what others send about it is only filed and recorded."""
    if not case.silenced or any(isinstance(e, Open) for e in effects):
        return effects
    return [e for e in effects if isinstance(e, Attach | Change | Record | Suppress)]


# -- a case opened -------------------------------------------------------------------------


def opening(
    email: str,
    name: str,
    subject: str,
    received_at: datetime,
    policy: Policy,
    reopened_from: str = "",
    other_addresses: Sequence[str] = (),
) -> CaseState:
    """A new case as it starts: letters go to EMAIL; mail from it or OTHER_ADDRESSES is the
    customer's; R2's and R5's clocks start at RECEIVED_AT."""
    email = email.lower()
    return CaseState(
        ref="",
        subject=subject,
        customer_email=email,
        customer_name=name,
        received_at=received_at,
        first_response_due=policy.calendar.first_response_due(received_at),
        adr_date=received_at + timedelta(weeks=policy.adr_wait_weeks),
        addresses=frozenset({email, *(a.lower() for a in other_addresses)}),
        reopened_from=reopened_from,
    )


def complaint(
    state: CaseState,
    found: frozenset[Detail],
    actor: str,
    text: str,
    attachments: Sequence[str],
    now: datetime,
    policy: Policy,
) -> list[Effect]:
    """R1/R2: open the case STATE (the R1 details FOUND), acknowledged and its handlers told."""
    words = deadlock_request(text, policy.deadlock_phrases)
    missing = missing_details(found)
    noticed = notice(text, state.received_at)
    effects = t.opened(
        state, actor, text, missing, attachments, words, state.reopened_from, now, policy, noticed
    )
    return [Open(state, found), *effects]


def new_complaint(
    reading: Reading, arrival: Arrival, sender: Address, now: datetime, policy: Policy
) -> list[Effect]:
    """A person's mail naming no case: a new complaint. Letters go to the Reply-To when it
    holds a usable address ("Name" <> does not); the From is the customer's too."""
    parsed = reading.parsed
    reply_to = [a for a in parsed.reply_to if not unsendable(a.email)]
    customer = reply_to[0] if reply_to else sender
    name = sender.name or customer.name
    found = find_details(name, parsed.text)
    state = opening(
        customer.email, name, parsed.subject, arrival.received_at, policy, "", [sender.email]
    )
    return complaint(state, found, sender.email, parsed.text, _files(parsed), now, policy)


# -- on a case -----------------------------------------------------------------------------


def customer_wrote(
    reading: Reading, arrival: Arrival, case: CaseState, now: datetime, policy: Policy
) -> list[Effect]:
    """The customer's reply; long after resolution (R7) it is a new complaint instead."""
    parsed = reading.parsed
    assert parsed.sender is not None
    actor = parsed.sender.email
    if t.too_late_to_reopen(case, arrival.received_at, policy):
        found = find_details(case.customer_name, parsed.text)
        follow_on = opening(
            case.customer_email,
            case.customer_name,
            parsed.subject,
            arrival.received_at,
            policy,
            case.ref,
            sorted(case.addresses),
        )
        return complaint(follow_on, found, actor, parsed.text, _files(parsed), now, policy)
    new_text = reading.new_text
    words = deadlock_request(new_text, policy.deadlock_phrases)
    noticed = notice(new_text, arrival.received_at)
    return t.customer_replied(case, actor, new_text, _files(parsed), words, now, policy, noticed)


def stranger_wrote(reading: Reading, sender: Address, policy: Policy) -> list[Effect]:
    """Mail naming a case from neither its customer nor staff (transitions.stranger_wrote)."""
    new_text = reading.new_text
    words = deadlock_request(new_text, policy.deadlock_phrases)
    return t.stranger_wrote(sender, new_text, _files(reading.parsed), words)


# -- robots and what we cannot read ---------------------------------------------------------


def machine(reading: Reading, thread: Thread) -> list[Effect]:
    """A robot's mail: never answered; on the case it names, else kept on none."""
    verdict, case = reading.verdict, thread.case
    kind = MACHINE_KINDS[verdict.sender]
    if reading.bounce is not None:
        report = reading.bounce
        failed = ", ".join(
            f"{r.address} {r.status or '?'} {'permanent' if r.permanent else 'temporary'}"
            for r in report.recipients
        )
        if case is None:
            return [Ignore(kind, f"bounce: {failed or 'no recipient named'}")]
        sent_to = thread.letters_to | {case.customer_email}
        stopped = [
            (r.address, f"{r.status or 'permanent'} bounce")
            for r in report.recipients
            if r.permanent and r.address in sent_to
        ]
        undelivered = [
            letter
            for letter in thread.returned
            if not letter.undelivered and letter.to_address in {a for a, _ in stopped}
        ]
        return t.bounced(failed, stopped, verdict.reason, case, undelivered)
    if case is None:
        return [Ignore(kind, verdict.reason)]
    return [Attach(kind, t.RULE, verdict.reason, verdict.reason)]


def too_large(reading: Reading, size: int, limit: int) -> list[Effect]:
    """Kept raw and set aside; a person is told politely (a robot is not)."""
    parsed = reading.parsed
    reason = f"too large: {size} bytes, limit {limit} (limits.max_message_bytes)"
    effects: list[Effect] = [Quarantine(None, reason)]
    if parsed.sender is not None and not reading.verdict.is_machine:
        effects.append(TooLarge(parsed.sender, parsed.subject, parsed.message_id, size, limit))
    return effects


# -- staff ---------------------------------------------------------------------------------


def staff_wrote(
    reading: Reading,
    arrival: Arrival,
    thread: Thread,
    member: StaffMember,
    now: datetime,
    policy: Policy,
) -> list[Effect]:
    """A message from a listed staff address: verified, then its commands and words decided."""
    parsed, auth, case = reading.parsed, policy.staff_auth, thread.case
    verdict = verify_sender(
        parsed, auth.trusted_authserv_ids, auth.require, auth.exchange_online_tenant_id
    )
    if not verdict.verified:
        return _unverified(parsed, case, member, verdict.reason, policy)

    reply = read_commands(reading.new_text, Role(member.role))
    errors = list(reply.errors) + t.staff_refusals(case, reply, now, policy, thread.named)
    names = {c.name for c in reply.commands}
    if case is None and names == {"release"}:  # an answer to the held-list letter
        return release_held(parsed, member, reply, thread.held)
    kind = MessageKind.STAFF_NOTE if "note" in names else MessageKind.STAFF_REPLY
    if errors:
        refused = "refused: " + "; ".join(errors)
        error = _error(case, member, parsed, errors)
        if case is None:
            return [Ignore(kind, f"staff message {refused}"), error]
        return [Attach(kind, member.email, refused), error]

    if case is None:  # staff_refusals made sure this message says #new
        [new] = reply.commands
        email, _, name = new.argument.partition(" ")
        email, name = email.strip("<>"), name.strip()
        found = find_details(name, reply.text)
        state = opening(email, name, parsed.subject, arrival.received_at, policy)
        effects = complaint(state, found, member.email, reply.text, [], now, policy)
        done = [f"opened the case for {email} and acknowledged it"]
        return effects + _confirm(member, parsed, state, done, policy)

    recipients = frozenset(a.email.lower() for a in (*parsed.to, *parsed.cc))
    effects, done = t.staff_replied(case, member, reply, recipients, now, policy, thread.named)
    return effects + _confirm(member, parsed, case, done, policy)


def release_held(
    parsed: ParsedMessage, member: StaffMember, reply: StaffReply, held: frozenset[int]
) -> list[Effect]:
    """#release ID lines: each held message named is released; any error, none is."""
    errors = list(reply.errors)
    released: list[int] = []
    for command in reply.commands:
        number = command.argument.split()[0].lstrip("#")
        if number.isdigit() and int(number) in held:
            released.append(int(number))
        else:
            errors.append(
                f"#release {command.argument}: no held message {number} (released already, "
                "or never held: mailbot held list shows them)"
            )
    kind = MessageKind.STAFF_REPLY
    if errors:
        refused = "refused: " + "; ".join(errors)
        return [Ignore(kind, f"staff message {refused}"), _error(None, member, parsed, errors)]
    numbers = ", ".join(str(n) for n in released)
    effects: list[Effect] = [Ignore(kind, f"staff message: released held {numbers}")]
    effects += [Release(number, member.email) for number in released]
    done = [f"released held message {n}: it is processed as on its arrival" for n in released]
    title = f"Done: {parsed.subject or 'released'}"
    context = {"done": done}
    confirmation = ToStaff(
        member, MessageKind.STAFF_CONFIRMATION, "staff_confirmation", title, parsed.message_id,
        context,
    )  # fmt: skip
    return [*effects, confirmation]


def _confirm(
    member: StaffMember, parsed: ParsedMessage, case: CaseState, done: list[str], policy: Policy
) -> list[Effect]:
    if not policy.confirm_staff_commands:
        return []
    title = f"Done: {parsed.subject or case.subject}"
    kind = MessageKind.STAFF_CONFIRMATION
    return [ToStaff(member, kind, "staff_confirmation", title, parsed.message_id, {"done": done})]


def _error(
    case: CaseState | None, member: StaffMember, parsed: ParsedMessage, errors: list[str]
) -> ToStaff:
    prefix = f"[{case.ref}] " if case else ""
    return ToStaff(
        member,
        MessageKind.STAFF_ERROR,
        "staff_error",
        f"{prefix}Not done: {parsed.subject or '(no subject)'}",
        parsed.message_id,
        {"errors": errors, "subject": parsed.subject, "known": known()},
    )


def _unverified(
    parsed: ParsedMessage,
    case: CaseState | None,
    member: StaffMember,
    reason: str,
    policy: Policy,
) -> list[Effect]:
    """Claims a staff address, not authenticated: nothing done, the managers alerted."""
    why = f"claims staff address {member.email} but is not authenticated: {reason}"
    alerts: list[Effect] = [
        ToStaff(
            manager,
            MessageKind.SECURITY_ALERT,
            "security_alert",
            f"Unverified message from {member.email}: {parsed.subject or '(no subject)'}",
            None,
            {
                "claimed": member.email,
                "subject": parsed.subject,
                "message_id": parsed.message_id,
                "reason": reason,
            },
        )
        for manager in policy.with_role(Role.MANAGER)
    ]
    kind = MessageKind.STAFF_UNVERIFIED
    where: Effect = Attach(kind, t.RULE, why) if case else Quarantine(kind, why)
    return [where, *alerts]


def _files(parsed: ParsedMessage) -> list[str]:
    return [attachment.filename for attachment in parsed.attachments]
