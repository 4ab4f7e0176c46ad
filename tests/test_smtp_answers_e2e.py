"""SMTP answers by their code, at every stage of a letter; give_up_after counts from a refusal."""

from __future__ import annotations

import itertools
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlmodel import Session, col, create_engine, select

from mailbot.store.models import MessageKind, Outbound, OutboundStatus
from sandbox import HANG_UP, Answer, Envelope, free_port
from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_defences_e2e import with_alerts
from tests.test_intake_e2e import complaint

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
ALICE, BOB, CAROL = "alice@example.net", "bob@example.net", "carol@example.net"
OPS = "ops@provider.example"


def ingest(mailbot: Mailbot, tmp_path: Path, customers: list[str], now: datetime = NOW) -> int:
    """One complaint from each of CUSTOMERS, in one command: their letters are one batch."""
    paths = []
    for address in customers:
        path = tmp_path / f"{make_msgid()[1:-1]}.eml"
        path.write_bytes(complaint(sender=f"Customer <{address}>")[0])
        paths.append(str(path))
    return mailbot("--now", now.isoformat(), "ingest", *paths)


def tick(mailbot: Mailbot, now: datetime) -> int:
    return mailbot("--now", now.isoformat(), "tick")


def letters(mailbot: Mailbot) -> list[Outbound]:
    """The outbox, in the order it is sent."""
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        rows = list(session.exec(select(Outbound).order_by(col(Outbound.id))))
    engine.dispose()
    return rows


def acknowledgement(mailbot: Mailbot, address: str) -> Outbound:
    [row] = [
        r
        for r in letters(mailbot)
        if r.kind == MessageKind.ACKNOWLEDGEMENT and r.to_address == address
    ]
    return row


def at(stage: str, address: str, answer: str) -> Answer:
    """The sink's answer to STAGE of the letters to ADDRESS; every other letter goes."""

    def refuse(asked: str, letter: Envelope) -> str | None:
        return answer if asked == stage and address in letter.rcpt_tos else None

    return refuse


def point_smtp_at(mailbot: Mailbot, port: int) -> None:
    """An outage (a port nothing listens on), or its end (the sink's port)."""
    lines = mailbot.config.read_text().splitlines()
    smtp = lines.index("[smtp]")
    at_port = next(i for i in range(smtp, len(lines)) if lines[i].startswith("port = "))
    lines[at_port] = f"port = {port}"
    mailbot.config.write_text("\n".join(lines) + "\n")


def record_writes(
    monkeypatch: pytest.MonkeyPatch, before: Callable[[bytes], None] | None = None
) -> list[bytes]:
    """Every write mailbot's SMTP client makes, in order: smtplib.SMTP.send, which its
    commands and letters all go through; BEFORE is called with each first."""
    written: list[bytes] = []
    send = smtplib.SMTP.send

    def recorded(client: smtplib.SMTP, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        if before is not None:
            before(data)
        written.append(data)
        send(client, data)

    monkeypatch.setattr(smtplib.SMTP, "send", recorded)
    return written


def behind_a_final_dot(written: list[bytes], address: str) -> bool:
    """Whether the envelope to ADDRESS went in one write with a letter's content."""
    return any(
        b"\r\n.\r\nMAIL FROM:" in data and f"RCPT TO:<{address}>".encode() in data
        for data in written
    )


@pytest.mark.sqlite_only  # the stages are the server's and the client's: one database is enough
@pytest.mark.parametrize(
    ("stage", "answer"),
    [
        ("DATA", "554 5.6.0 message content rejected"),  # smtplib raises this one
        ("DATA", f"554 5.6.0 message content rejected {HANG_UP}"),
        ("RCPT", f"550 5.1.1 no such user {HANG_UP}"),
        ("DOT", f"550 5.7.1 refused as spam {HANG_UP}"),
    ],
)
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_a_5xx_at_any_stage_fails_that_letter_at_once_and_the_batch_goes_on(
    mailbot: Mailbot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
    answer: str,
    pipelining: bool,
) -> None:
    mailbot.smtp.handler.pipelining = pipelining  # RFC 2920: commands sent together, or not
    mailbot.smtp.handler.answer = at(stage, BOB, answer)
    written = record_writes(monkeypatch)

    assert ingest(mailbot, tmp_path, [ALICE, BOB, CAROL]) == 0

    # not the first letter of the connection: with PIPELINING its envelope went in one write
    # with the letter before's content
    assert behind_a_final_dot(written, BOB) == pipelining

    refused = acknowledgement(mailbot, BOB)
    words = answer.removesuffix(HANG_UP).strip()
    assert (refused.status, refused.attempts) == (OutboundStatus.FAILED, 1)
    assert words in refused.last_error, "the server's own words"
    others = [r for r in letters(mailbot) if r.id != refused.id]
    assert len(others) == 5 and {r.status for r in others} == {OutboundStatus.SENT}
    assert sorted(e.rcpt_tos[0] for e in mailbot.customer_mail()) == [ALICE, CAROL]
    assert len(mailbot.staff_mail(TEAM_LEADER)) == 3


def test_a_451_to_the_data_command_defers_only_that_letter(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    mailbot.smtp.handler.answer = at("DATA", BOB, "451 4.3.0 queue full")

    assert ingest(mailbot, tmp_path, [ALICE, BOB, CAROL]) == 0

    deferred = acknowledgement(mailbot, BOB)
    assert (deferred.status, deferred.attempts) == (OutboundStatus.QUEUED, 1)
    assert "451 4.3.0 queue full" in deferred.last_error
    assert deferred.first_refused_at == NOW, "give_up_after counts from here"
    others = [r for r in letters(mailbot) if r.id != deferred.id]
    assert {r.status for r in others} == {OutboundStatus.SENT}
    assert all(r.first_refused_at is None for r in others)

    mailbot.smtp.handler.answer = None
    assert tick(mailbot, NOW + timedelta(minutes=2)) == 0
    assert acknowledgement(mailbot, BOB).status == OutboundStatus.SENT
    assert sorted(e.rcpt_tos[0] for e in mailbot.customer_mail()) == [ALICE, BOB, CAROL]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_a_dropped_connection_defers_the_rest_of_the_batch_untried(
    mailbot: Mailbot, tmp_path: Path, pipelining: bool
) -> None:
    mailbot.smtp.handler.pipelining = pipelining
    mailbot.smtp.handler.answer = at("RCPT", BOB, HANG_UP)

    assert ingest(mailbot, tmp_path, [ALICE, BOB, CAROL]) == 75  # the server went away

    rows = letters(mailbot)
    bob = acknowledgement(mailbot, BOB)
    place = [r.id for r in rows].index(bob.id)
    before, after = rows[:place], rows[place + 1 :]
    assert {r.status for r in before} == {OutboundStatus.SENT}
    assert (bob.status, bob.attempts, bob.first_refused_at) == (OutboundStatus.QUEUED, 1, NOW)
    assert "connection lost" in bob.last_error
    assert len(after) == 3
    assert {(r.status, r.attempts, r.first_refused_at) for r in after} == {
        (OutboundStatus.QUEUED, 0, None)
    }, "not tried, so not refused"

    mailbot.smtp.handler.answer = None
    assert tick(mailbot, NOW + timedelta(minutes=2)) == 0
    assert {r.status for r in letters(mailbot)} == {OutboundStatus.SENT}
    assert len(mailbot.smtp.received) == len(rows)


def test_letters_queued_through_a_long_outage_are_all_tried_before_any_is_given_up(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    with_alerts(mailbot)
    point_smtp_at(mailbot, free_port())
    assert ingest(mailbot, tmp_path, [ALICE, BOB]) == 75
    for days in (1, 2, 3):
        assert tick(mailbot, NOW + timedelta(days=days)) == 75
    waiting = letters(mailbot)
    assert {(r.status, r.attempts) for r in waiting} == {(OutboundStatus.QUEUED, 0)}

    point_smtp_at(mailbot, mailbot.smtp.port)  # back, four days after the first letter
    assert tick(mailbot, NOW + timedelta(days=4)) == 0

    sent = letters(mailbot)
    assert {r.status for r in sent} == {OutboundStatus.SENT}
    assert len(sent) >= len(waiting) and len(mailbot.smtp.received) == len(sent)
    assert mailbot.staff_mail(OPS) == [], "nothing was given up"


def test_a_letter_refused_since_longer_than_give_up_after_is_given_up_with_one_alert(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    with_alerts(mailbot)
    point_smtp_at(mailbot, free_port())
    assert ingest(mailbot, tmp_path, [ALICE]) == 75
    point_smtp_at(mailbot, mailbot.smtp.port)
    mailbot.smtp.handler.answer = at("RCPT", ALICE, "451 4.7.1 greylisted")
    first_refusal = NOW + timedelta(days=3)  # three days after it was queued

    for moment in (first_refusal, first_refusal + timedelta(days=1, hours=23)):
        assert tick(mailbot, moment) == 0
        ack = acknowledgement(mailbot, ALICE)
        assert (ack.status, ack.first_refused_at) == (OutboundStatus.QUEUED, first_refusal)
    assert mailbot.staff_mail(OPS) == []

    assert tick(mailbot, first_refusal + timedelta(days=2, hours=1)) == 0

    ack = acknowledgement(mailbot, ALICE)
    assert ack.status == OutboundStatus.FAILED
    assert ack.last_error == "gave up after 2d: 451 4.7.1 greylisted (to RCPT)"
    subject = f"mailbot: gave up sending acknowledgement to {ALICE}"
    alerts = [str(e.message["Subject"]) for e in mailbot.staff_mail(OPS)]
    assert alerts.count(subject) == 1
    assert tick(mailbot, first_refusal + timedelta(days=3)) == 0
    assert [str(e.message["Subject"]) for e in mailbot.staff_mail(OPS)].count(subject) == 1


def test_a_refusal_while_a_backlog_drains_keeps_its_first_refusal(
    mailbot: Mailbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_MAILBOX_BATCH_SIZE", "1")
    for address in (ALICE, BOB, CAROL):
        mailbot.append(complaint(sender=f"Customer <{address}>")[0], NOW)
    mailbot.smtp.handler.answer = at("RCPT", BOB, "451 4.7.1 greylisted")

    assert mailbot("--now", NOW.isoformat(), "run", "--once") == 0

    bob = acknowledgement(mailbot, BOB)
    assert (bob.status, bob.attempts, bob.first_refused_at) == (OutboundStatus.QUEUED, 1, NOW)
    assert "451 4.7.1 greylisted" in bob.last_error
    assert sorted(e.rcpt_tos[0] for e in mailbot.customer_mail()) == [ALICE, CAROL]


@pytest.mark.sqlite_only  # the answers are the server's and the client's: one database is enough
def test_a_354_after_a_refused_recipient_ends_the_empty_letter_and_the_refusal_decides(
    mailbot: Mailbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 2920 lets a server answer DATA 354 after refusing every RCPT; the client ends the
    empty letter at once, and the RCPT refusal is the letter's answer."""
    mailbot.smtp.handler.data_after_refusal = True
    mailbot.smtp.handler.answer = at("RCPT", BOB, "550 5.1.1 no such user")
    written = record_writes(monkeypatch)

    assert ingest(mailbot, tmp_path, [ALICE, BOB, CAROL]) == 0

    assert behind_a_final_dot(written, BOB), "not the first letter of its connection"
    refused = acknowledgement(mailbot, BOB)
    assert (refused.status, refused.attempts) == (OutboundStatus.FAILED, 1)
    assert refused.last_error == "550 5.1.1 no such user (to RCPT)"
    others = [r for r in letters(mailbot) if r.id != refused.id]
    assert {r.status for r in others} == {OutboundStatus.SENT}
    assert len(mailbot.smtp.received) == 5, "nothing empty was taken"


def test_each_letter_costs_one_round_trip_and_leaves_at_most_one_in_doubt(
    mailbot: Mailbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Observed at the client's writes (smtplib.SMTP.send): each is followed by reading an
    answer, so writes count round trips. With PIPELINING a letter's content and final dot go
    in one write with the next letter's MAIL, RCPT and DATA: the connection costs EHLO, the
    first envelope, one write a letter and QUIT (two a letter, one-by-one). And when a
    letter's content is written, every letter before it is recorded sent: a crash then
    leaves that one letter in doubt, and no other."""
    engine = create_engine(mailbot.db_url)
    sent_before: list[int] = []  # at each write of a letter's content: the letters recorded sent

    def count_sent(data: bytes) -> None:
        if b"\r\n.\r\n" in data:
            with Session(engine) as session:
                rows = session.exec(select(Outbound.status)).all()
            sent_before.append(rows.count(OutboundStatus.SENT))

    written = record_writes(monkeypatch, count_sent)

    assert ingest(mailbot, tmp_path, [ALICE, BOB, CAROL]) == 0

    engine.dispose()
    rows = letters(mailbot)
    assert len(rows) == 6 and {r.status for r in rows} == {OutboundStatus.SENT}
    assert written[0].startswith(b"ehlo") and written[-1].startswith(b"quit")
    assert len(written) == 2 + 1 + len(rows), "one round trip a letter"
    assert all(b"\r\n.\r\nMAIL FROM:" in data for data in written[2:-2])
    assert sent_before == list(range(len(rows)))


def test_a_connection_lost_at_the_next_letters_envelope_keeps_the_letter_before_sent(
    mailbot: Mailbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes away at the second letter's MAIL FROM, which came in one write with
    the first letter's content, after answering that content 250: the first is recorded
    sent (its commit ran while the server read the envelope), the second, no content sent,
    waits to go again, the rest untried; on SQLite and PostgreSQL (the two letters' claims
    and answers are on two database connections)."""
    mails = itertools.count(1)

    def away_at_the_second(stage: str, letter: Envelope) -> str | None:
        return HANG_UP if stage == "MAIL" and next(mails) == 2 else None

    mailbot.smtp.handler.answer = away_at_the_second
    written = record_writes(monkeypatch)

    assert ingest(mailbot, tmp_path, [ALICE, BOB, CAROL]) == 75  # the server went away

    first, second, *rest = letters(mailbot)
    assert behind_a_final_dot(written, second.to_address)
    assert (first.status, first.attempts) == (OutboundStatus.SENT, 1)
    assert (second.status, second.attempts) == (OutboundStatus.QUEUED, 1)
    assert "connection lost" in second.last_error
    assert {(r.status, r.attempts) for r in rest} == {(OutboundStatus.QUEUED, 0)}
    assert len(mailbot.smtp.received) == 1

    mailbot.smtp.handler.answer = None
    assert tick(mailbot, NOW + timedelta(minutes=2)) == 0
    assert {r.status for r in letters(mailbot)} == {OutboundStatus.SENT}
    delivered = [str(e.message["Message-ID"]) for e in mailbot.smtp.received]
    assert sorted(delivered) == sorted(r.message_id for r in letters(mailbot)), "each once"


@pytest.mark.postgresql_only  # SQLite has no row locks: one daemon holds the database
def test_the_next_letter_is_claimed_before_its_envelope_goes_and_no_other_daemon_takes_it(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    """When the second letter's content arrives, the first is answered and committed; the
    second (its answer not read) and the third (its envelope came with the second's
    content) are claimed: another daemon's claim (FOR UPDATE SKIP LOCKED) passes over both."""
    engine = create_engine(mailbot.db_url)
    dots = itertools.count(1)
    claimable: list[list[int]] = []

    def another_daemon_claims(stage: str, letter: Envelope) -> str | None:
        if stage == "DOT" and next(dots) == 2:
            with Session(engine) as session:
                queued = select(Outbound.id).where(Outbound.status == OutboundStatus.QUEUED)
                claim = queued.order_by(col(Outbound.id)).with_for_update(skip_locked=True)
                claimable.append([row_id for row_id in session.exec(claim) if row_id])
        return None

    mailbot.smtp.handler.answer = another_daemon_claims

    assert ingest(mailbot, tmp_path, [ALICE, BOB, CAROL]) == 0

    engine.dispose()
    ids = [r.id for r in letters(mailbot)]
    assert claimable == [ids[3:]]
    assert len(mailbot.smtp.received) == 6
