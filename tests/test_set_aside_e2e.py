"""A fault is set aside or left for later, never retried forever nor blamed on good mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, create_engine, select

from mailbot.store.models import Case, Checkpoint, Event, Inbound
from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_defences_e2e import cases, ingest, with_alerts
from tests.test_intake_e2e import complaint

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday: first responses due Tuesday 10:00
ALICE, BOB = "alice@example.net", "bob@example.net"
OPS = "ops@provider.example"


def tick(mailbot: Mailbot, now: datetime, *more: str) -> None:
    assert mailbot("--now", now.isoformat(), "tick", *more) == 0


def case_of(mailbot: Mailbot, capsys: pytest.CaptureFixture[str], address: str) -> dict[str, Any]:
    [case] = [c for c in cases(mailbot, capsys) if c["customer_email"] == address]
    return case


def set_deadlock_request(mailbot: Mailbot, ref: str, moment: datetime | None) -> None:
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        case = session.exec(select(Case).where(Case.ref == ref)).one()
        case.deadlock_requested_at = moment
        session.add(case)
        session.commit()
    engine.dispose()


def events(mailbot: Mailbot, ref: str, action: str) -> list[Event]:
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        case = session.exec(select(Case).where(Case.ref == ref)).one()
        found = list(
            session.exec(
                select(Event).where(Event.case_id == case.id, Event.action == action)
            ).all()
        )
    engine.dispose()
    return found


def mail_to(mailbot: Mailbot, address: str) -> list[str]:
    return [
        str(e.message["X-Mailbot-Kind"]) for e in mailbot.smtp.received if address in e.rcpt_tos
    ]


def test_a_case_whose_timers_raise_is_set_aside_once_and_the_other_cases_go_on(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_alerts(mailbot)
    for address in (ALICE, BOB):
        assert ingest(mailbot, tmp_path, complaint(sender=f"Customer <{address}>")[0]) == 0
    bob = case_of(mailbot, capsys, BOB)["ref"]
    # a corrupt row: a deadlock request dated at the end of time, where the rules overflow
    set_deadlock_request(mailbot, bob, datetime(9999, 12, 31, 12, 0, tzinfo=UTC))

    tick(mailbot, NOW + timedelta(days=1, minutes=30))  # both first responses are overdue

    case = case_of(mailbot, capsys, BOB)
    assert case["set_aside_reason"] == "OverflowError: date value out of range"
    assert case["next_due_at"] is None
    assert [e.detail for e in events(mailbot, bob, "set aside")] == [case["set_aside_reason"]]
    assert [str(e.message["Subject"]) for e in mailbot.staff_mail(OPS)] == [
        f"mailbot: case {bob} set aside by the tick"
    ]
    assert mail_to(mailbot, TEAM_LEADER).count("first_response_overdue") == 1  # Alice's

    capsys.readouterr()
    for day in (1, 2):  # the updates' cut-offs, Tuesday and Wednesday at 16:00
        tick(mailbot, NOW + timedelta(days=day, hours=6))
    assert "tick failed" not in capsys.readouterr().err, "a set-aside case is not retried"
    assert mail_to(mailbot, ALICE) == ["acknowledgement", "update", "update"]
    assert mail_to(mailbot, BOB) == ["acknowledgement"]
    assert len(mailbot.staff_mail(OPS)) == 1, "told once"

    # mail on the case is still received, and does not put it back in the tick
    reply = complaint(subject=f"Re: [{bob}] My broadband", sender=f"Customer <{BOB}>")[0]
    assert ingest(mailbot, tmp_path, reply, NOW + timedelta(days=2, hours=7)) == 0
    case = case_of(mailbot, capsys, BOB)
    assert [m["kind"] for m in case["messages"] if m["direction"] == "in"] == [
        "complaint",
        "customer_reply",
    ]
    assert (case["set_aside_reason"], case["next_due_at"]) == (
        "OverflowError: date value out of range",
        None,
    )

    capsys.readouterr()
    assert mailbot("check") == 0
    assert "1 case(s) set aside by the tick" in capsys.readouterr().out
    assert mailbot("show", bob) == 0
    assert "SET ASIDE by the tick: OverflowError" in capsys.readouterr().out

    set_deadlock_request(mailbot, bob, None)  # the admin mends the row, and puts it back
    tick(mailbot, NOW + timedelta(days=3, hours=6), "--retry-set-aside")

    case = case_of(mailbot, capsys, BOB)
    assert case["set_aside_reason"] is None and case["next_due_at"] is not None
    assert mail_to(mailbot, BOB) == ["acknowledgement", "update"]
    assert len(events(mailbot, bob, "put back in the tick")) == 1
    assert len(mailbot.staff_mail(OPS)) == 1


def disk_failing_on_new_cases(db_url: str, failing: bool) -> None:
    """The database refuses to store a case (as with a full disk), or works again."""
    engine = create_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as connection:
        if not failing:
            connection.exec_driver_sql(
                "DROP TRIGGER disk_fails" if sqlite else 'DROP TRIGGER disk_fails ON "case"'
            )
        elif sqlite:  # a trigger naming a table that is gone: "no such table", at each insert
            connection.exec_driver_sql(
                'CREATE TRIGGER disk_fails BEFORE INSERT ON "case" BEGIN SELECT 1 FROM gone; END'
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION disk_fails() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'could not extend file: No space left on device' "
                "USING ERRCODE = 'disk_full'; END $$"
            )
            connection.exec_driver_sql(
                'CREATE TRIGGER disk_fails BEFORE INSERT ON "case" '
                "FOR EACH ROW EXECUTE FUNCTION disk_fails()"
            )
    engine.dispose()


def test_a_database_error_while_processing_leaves_the_message_in_the_inbox_for_a_later_run(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    out_of_office = complaint(extra_headers="Auto-Submitted: auto-replied\r\n")[0]
    mailbot.append(out_of_office)  # recorded on no case: no case row to store
    mailbot.append(complaint()[0])
    mailbot.append(complaint(extra_headers="Auto-Submitted: auto-replied\r\n")[0])
    assert mailbot("migrate") == 0
    disk_failing_on_new_cases(mailbot.db_url, True)
    capsys.readouterr()

    assert mailbot("run", "--once") == 0

    warnings = [line for line in capsys.readouterr().err.splitlines() if " WARNING " in line]
    assert len([line for line in warnings if "left for the next cycle" in line]) == 1
    assert mailbot.folder_count("INBOX") == 1, "the complaint waits in the mailbox"
    assert mailbot.folder_count("mailbot/processed") == 2
    assert mailbot.folder_count("mailbot/quarantine") == 0, "good mail is not quarantined"
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        stored = session.exec(select(Inbound).order_by(col(Inbound.id))).all()
        assert [m.disposition for m in stored] == ["ignored", "received", "ignored"]
        [checkpoint] = session.exec(select(Checkpoint)).all()
    engine.dispose()
    with mailbot.imap() as client:
        client.select_folder("INBOX")
        [waiting] = client.search("ALL")
    assert checkpoint.last_uid < waiting, "the checkpoint has not passed it"
    assert cases(mailbot, capsys) == [] and mailbot.smtp.received == []

    disk_failing_on_new_cases(mailbot.db_url, False)
    assert mailbot("run", "--once") == 0

    assert mailbot.folder_count("INBOX") == 0
    assert mailbot.folder_count("mailbot/processed") == 3
    assert len(cases(mailbot, capsys)) == 1
    assert mailbot.customer_kinds() == ["acknowledgement"]
