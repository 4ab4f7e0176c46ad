"""The tamper-evident log (issue 28): `mailbot audit verify` on replayed cases, after changes
made behind mailbot's back with SQL, after erasure and purge, and with two writers at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from mailbot import audit
from mailbot.store import cases, db, migrations
from mailbot.store.models import Case, ChainLink, Event, Outbound
from sandbox import Postgres
from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_privacy_e2e import ALICE, resolved_case
from tests.test_procedure_e2e import ingest
from tests.test_staff_e2e import staff_reply


@pytest.fixture
def engine(mailbot: Mailbot) -> Iterator[Engine]:
    engine = db.connect(mailbot.db_url)
    yield engine
    engine.dispose()


def verify(mailbot: Mailbot, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = mailbot("audit", "verify", *args)
    return code, capsys.readouterr().out


def sql(engine: Engine, statement: str, **params: Any) -> Any:
    with engine.begin() as connection:
        result = connection.execute(text(statement), params)
        return result.scalar_one() if result.returns_rows else None


def test_verify_holds_on_a_replayed_case_and_names_each_tampering(
    mailbot: Mailbot, tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = resolved_case(mailbot, tmp_path, capsys)
    code, out = verify(mailbot, capsys)
    assert code == 0, out
    assert out.startswith("audit verify: 1 case(s), ") and out.endswith("all hold\n")
    assert len(out.splitlines()) == 1

    with Session(engine) as session:  # a letter's text changed
        letter = session.exec(select(Outbound).order_by(col(Outbound.id))).first()
        assert letter is not None
        letter_id, raw = letter.id, letter.raw
    sql(engine, "UPDATE outbound SET raw = :r WHERE id = :i", r=raw + b"forged\r\n", i=letter_id)
    code, out = verify(mailbot, capsys)
    assert code == 1
    assert f"{ref}: link " in out and f"(letter {letter_id}, " in out
    assert "the record's content was changed" in out
    sql(engine, "UPDATE outbound SET raw = :r WHERE id = :i", r=raw, i=letter_id)
    assert verify(mailbot, capsys)[0] == 0

    with Session(engine) as session:  # an event deleted
        event = session.exec(select(Event).where(Event.action == "resolved")).one()
        kept = event.model_dump()
    sql(engine, "DELETE FROM event WHERE id = :i", i=kept["id"])
    code, out = verify(mailbot, capsys)
    assert code == 1
    assert f"{ref}: link " in out and f"(event {kept['id']}, resolved): the record is gone" in out
    sql(
        engine,
        "INSERT INTO event (id, case_id, at, actor, action, detail) "
        "VALUES (:id, :case_id, :at, :actor, :action, :detail)",
        **kept | {"at": stored(mailbot, kept["at"])},
    )
    assert verify(mailbot, capsys)[0] == 0

    with Session(engine) as session:  # a forged message added
        case_id = session.exec(select(Event.case_id)).first()
    forged = sql(
        engine,
        "INSERT INTO inbound (message_id, sha256, content_sha256, size, received_at, source, "
        "disposition, reason, case_id, kind, subject, from_address, from_name, in_reply_to, "
        "\"references\", text, parser) VALUES ('<forged@example.net>', 'x', 'x', 1, :at, 'file "
        "x', 'CASE', '', :c, 'CUSTOMER_REPLY', 'I withdraw my complaint', :a, 'Alice', '', '', "
        "'I withdraw it.', 'stdlib') RETURNING id",
        at=stored(mailbot, datetime(2026, 11, 3, tzinfo=UTC)),
        c=case_id,
        a=ALICE,
    )
    code, out = verify(mailbot, capsys, "--case", ref)
    assert code == 1
    assert f"{ref}: message received {forged}: a record that is in no chain (added)" in out


def stored(mailbot: Mailbot, moment: datetime) -> datetime | str:
    """MOMENT as plain SQL gives it to the database (SQLite keeps naive UTC text)."""
    if mailbot.db_url.startswith("sqlite"):
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return moment


def test_verify_still_holds_after_erasure_and_purge(
    mailbot: Mailbot, tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = resolved_case(mailbot, tmp_path, capsys)
    assert mailbot("--now", "2027-12-05T10:00:00+00:00", "erase", "--customer", ALICE) == 0
    code, out = verify(mailbot, capsys, "--case", ref)
    assert code == 0, out
    with Session(engine) as session:
        links = session.exec(select(ChainLink).order_by(col(ChainLink.seq))).all()
    assert [link.salt for link in links[:-1]] == [""] * (len(links) - 1)  # no means to guess
    assert links[-1].kind == "personal data erased" and links[-1].salt
    # a record changed after the erasure is still seen
    sql(engine, "UPDATE event SET detail = 'not erased' WHERE action = 'personal data erased'")
    assert verify(mailbot, capsys)[0] == 1


def test_a_database_migrated_from_before_the_chains_starts_them_with_a_record_saying_so(
    mailbot: Mailbot, tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from alembic import command

    ref = resolved_case(mailbot, tmp_path, capsys)
    with engine.connect() as connection:  # today's schema, holding a case written by it
        command.downgrade(migrations.config(connection), "0007")
        connection.commit()
    assert migrations.upgrade(engine) == ("0007", migrations.head())
    code, out = verify(mailbot, capsys)
    assert code == 0, out
    capsys.readouterr()
    assert mailbot("show", ref) == 0
    assert "records chained from here" in capsys.readouterr().out
    later, _ = staff_reply(TEAM_LEADER, "#note checked after the upgrade", f"RE: [{ref}] x")
    ingest(mailbot, tmp_path, later, datetime(2026, 11, 5, 10, 0, tzinfo=UTC))
    assert verify(mailbot, capsys)[0] == 0
    # an event written before the migration is sealed by the start: deleting it is seen
    sql(engine, "DELETE FROM event WHERE action = 'resolved'")
    code, out = verify(mailbot, capsys)
    assert code == 1
    assert f"{ref}: link 1 (start, records chained from here): the records before" in out


def test_two_daemons_on_postgresql_write_one_case_s_chain_without_a_fork(
    postgres: Postgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.create_database()
    engine = db.open_database(url)
    with Session(engine) as session:
        case = Case(
            ref="CMP-2026-000001",
            customer_email=ALICE,
            customer_name="Alice",
            subject="s",
            received_at=datetime(2026, 11, 2, tzinfo=UTC),
            first_response_due=datetime(2026, 11, 3, tzinfo=UTC),
            adr_date=datetime(2026, 12, 28, tzinfo=UTC),
        )
        session.add(case)
        session.commit()
        case_id = case.id
    assert case_id is not None
    rounds, start = 15, threading.Barrier(2)
    failures: list[BaseException] = []

    def daemon(name: str) -> None:
        try:
            for number in range(rounds):
                start.wait()  # both at once, each round: only the case's lock keeps them apart
                with Session(engine) as session:
                    locked = cases.lock_case(session, session.get(Case, case_id))
                    assert locked is not None
                    at = datetime(2026, 11, 2, 12, tzinfo=UTC)
                    db.record_event(session, case_id, at, name, "note", str(number))
                    db.record_event(session, case_id, at, name, "note", f"{number} again")
                    session.commit()
        except BaseException as exc:
            failures.append(exc)
            start.abort()

    threads = [threading.Thread(target=daemon, args=(f"daemon{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with Session(engine) as session:
        seqs = session.exec(select(ChainLink.seq).where(ChainLink.case_id == case_id)).all()
        found = audit.verify(session)
    engine.dispose()
    assert sorted(seqs) == list(range(1, 4 * rounds + 1))  # one chain, no fork, nothing lost
    assert found.broken == [] and found.links == 4 * rounds
