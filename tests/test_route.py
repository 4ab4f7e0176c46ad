"""What a message means, read from the pure route: each branch, from real bytes, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from mailbot.config import StaffSettings
from mailbot.mail.read import Reader
from mailbot.procedure import effects as fx
from mailbot.procedure import rules
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.case import CaseState
from mailbot.procedure.policy import Policy, StaffAuth
from mailbot.procedure.route import Arrival, Thread, route
from mailbot.procedure.vocabulary import CaseStatus, MessageKind

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning, in business hours
LEADER = StaffSettings(email="terry@provider.example", name="Terry Leader", role="team_leader")
MANAGER = StaffSettings(email="morgan@provider.example", name="Morgan Manager", role="manager")
POLICY = Policy(
    calendar=BusinessCalendar(),
    limits=rules.TimeLimits(time(16, 0), 10, 1),
    staff=(LEADER, MANAGER),
    staff_auth=StaffAuth(("mx.provider.example",), "dmarc"),
    max_message_bytes=100_000,
)
READER = Reader(frozenset({"complaints@provider.example"}))
CASE = CaseState(
    ref="CMP-2026-000001",
    subject="Broadband drops",
    customer_email="pat@example.com",
    customer_name="Pat Example",
    received_at=NOW - timedelta(days=3),
    first_response_due=NOW - timedelta(days=1),
    adr_date=NOW + timedelta(weeks=8),
    addresses=frozenset({"pat@example.com"}),
)
VOUCHED = "Authentication-Results: mx.provider.example; dmarc=pass header.from=provider.example"


def mail(sender: str, body: str = "My broadband drops every evening.", *headers: str) -> bytes:
    head = [
        f"From: {sender}",
        "To: complaints@provider.example",
        "Subject: Re: [CMP-2026-000001] Broadband drops",
        "Message-ID: <m1@example.com>",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()


def routed(raw: bytes, case: CaseState | None = None, size: int | None = None) -> list[fx.Effect]:
    arrival = Arrival(NOW, len(raw) if size is None else size)
    return route(READER.read(raw), arrival, Thread(case), NOW, POLICY)


def kinds(effects: list[fx.Effect]) -> list[type]:
    return [type(e) for e in effects]


def test_a_persons_mail_naming_no_case_opens_one_acknowledged_and_copied_to_staff() -> None:
    effects = routed(mail("Pat Example <pat@example.com>"))
    assert kinds(effects)[:4] == [fx.Open, fx.Attach, fx.Acknowledge, fx.Notify]
    opened = effects[0]
    assert isinstance(opened, fx.Open)
    assert opened.state.customer_email == "pat@example.com"
    assert opened.state.received_at == NOW
    assert opened.state.first_response_due == POLICY.calendar.first_response_due(NOW)
    assert effects[1] == fx.Attach(MessageKind.COMPLAINT, "pat@example.com")


def test_letters_go_to_a_usable_reply_to_and_the_from_is_the_customers_too() -> None:
    raw = mail("Pat <pat@work.example>", "It drops.", "Reply-To: Pat <pat@home.example>")
    opened = routed(raw)[0]
    assert isinstance(opened, fx.Open)
    assert opened.state.customer_email == "pat@home.example"
    assert opened.state.addresses == {"pat@home.example", "pat@work.example"}


def test_the_customers_reply_goes_on_their_case() -> None:
    effects = routed(mail("Pat <PAT@example.com>", "Any news?"), CASE)
    assert effects[0] == fx.Attach(MessageKind.CUSTOMER_REPLY, "pat@example.com")
    assert fx.Open not in kinds(effects)


def test_a_reply_long_after_resolution_opens_a_follow_on_case() -> None:
    resolved = replace(CASE, status=CaseStatus.RESOLVED, resolved_at=NOW - timedelta(days=30))
    effects = routed(mail("pat@example.com", "It is broken again."), resolved)
    opened = effects[0]
    assert isinstance(opened, fx.Open)
    assert opened.state.reopened_from == CASE.ref
    assert effects[1] == fx.Attach(MessageKind.COMPLAINT, "pat@example.com")


def test_a_stranger_naming_a_case_is_kept_on_it_and_never_answered() -> None:
    effects = routed(mail("sam@elsewhere.example", "About Pat's case."), CASE)
    assert kinds(effects) == [fx.Attach, fx.NotifyThirdParty]
    assert isinstance(effects[0], fx.Attach) and effects[0].kind == MessageKind.THIRD_PARTY


def test_a_message_with_no_sender_address_is_quarantined() -> None:
    assert routed(mail("undisclosed-recipients:;")) == [fx.Quarantine(None, "no sender address")]


def test_a_message_too_large_is_quarantined_and_a_person_told_politely() -> None:
    effects = routed(mail("pat@example.com"), size=200_000)
    assert kinds(effects) == [fx.Quarantine, fx.TooLarge]
    robot = mail("pat@example.com", "Away.", "Auto-Submitted: auto-replied")
    assert kinds(routed(robot, size=200_000)) == [fx.Quarantine]


def test_a_robots_mail_is_never_answered_kept_on_its_case_or_on_none() -> None:
    raw = mail("pat@example.com", "I am away.", "Auto-Submitted: auto-replied")
    [ignored] = routed(raw)
    assert isinstance(ignored, fx.Ignore) and ignored.kind == MessageKind.AUTO_REPLY
    [attached] = routed(raw, CASE)
    assert isinstance(attached, fx.Attach) and attached.kind == MessageKind.AUTO_REPLY


def test_a_staff_address_without_our_servers_word_is_quarantined_and_managers_alerted() -> None:
    effects = routed(mail("Terry <terry@provider.example>", "#resolve Fixed."))
    assert isinstance(effects[0], fx.Quarantine)
    assert effects[0].kind == MessageKind.STAFF_UNVERIFIED
    alerts = [e for e in effects if isinstance(e, fx.ToStaff)]
    assert [a.member.email for a in alerts] == [MANAGER.email]


def test_a_verified_staff_reply_runs_its_commands_and_confirms() -> None:
    raw = mail("Terry <terry@provider.example>", "#resolve Line repaired.", VOUCHED)
    effects = routed(raw, CASE)
    assert effects[0] == fx.Attach(MessageKind.STAFF_REPLY, LEADER.email)
    assert fx.Change in kinds(effects)
    assert isinstance(effects[-1], fx.ToStaff)
    assert effects[-1].kind == MessageKind.STAFF_CONFIRMATION


def test_staff_new_opens_a_case_for_a_postal_complaint() -> None:
    body = "#new pat@example.com Pat Example\nPat phoned: the line drops every evening."
    effects = routed(mail("terry@provider.example", body, VOUCHED))
    opened = effects[0]
    assert isinstance(opened, fx.Open)
    assert opened.state.customer_email == "pat@example.com"
    assert effects[1] == fx.Attach(MessageKind.COMPLAINT, LEADER.email)


def test_a_staff_command_naming_no_case_is_refused_and_kept_on_none() -> None:
    effects = routed(mail("terry@provider.example", "#resolve Done.", VOUCHED))
    assert kinds(effects) == [fx.Ignore, fx.ToStaff]
    assert isinstance(effects[1], fx.ToStaff) and effects[1].kind == MessageKind.STAFF_ERROR
