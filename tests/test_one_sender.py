"""One sender at a time: commands beside a running daemon, and intake and tick on one case."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from mailbot.store import db
from mailbot.store.lock import me
from mailbot.store.models import DaemonLock
from tests.conftest import TEAM_LEADER, Mailbot
from tests.test_intake_e2e import cases, complaint
from tests.test_procedure_e2e import MONDAY_4PM, at, deadlock_case
from tests.test_staff_e2e import staff_reply

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def a_daemon_runs(mailbot: Mailbot, holder: str = "mx9.provider.example:4242") -> None:
    """A daemon on another host holds the lock and says so every few seconds."""
    engine = db.open_database(mailbot.db_url)
    name = "daemon" if engine.dialect.name == "sqlite" else f"daemon {holder}"
    with Session(engine) as session:
        session.add(DaemonLock(name=name, holder=holder, heartbeat=time.time()))
        session.commit()
    engine.dispose()


@pytest.mark.sqlite_only
def test_commands_that_send_are_refused_beside_a_running_daemon_on_sqlite(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_daemon_runs(mailbot)
    path = tmp_path / "complaint.eml"
    path.write_bytes(complaint()[0])
    capsys.readouterr()
    assert mailbot("--now", NOW.isoformat(), "ingest", str(path)) == 75
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "mx9.provider.example:4242" in said and "ingest" in said
    assert mailbot("--now", NOW.isoformat(), "tick") == 75
    assert mailbot("quarantine", "retry", "--all") == 75
    assert cases(mailbot, capsys) == [] and mailbot.smtp.received == []


@pytest.mark.postgresql_only
def test_commands_run_beside_running_daemons_on_postgresql(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_daemon_runs(mailbot)
    path = tmp_path / "complaint.eml"
    path.write_bytes(complaint()[0])
    assert mailbot("--now", NOW.isoformat(), "ingest", str(path)) == 0
    assert len(cases(mailbot, capsys)) == 1 and len(mailbot.customer_mail()) == 1


def test_check_names_every_running_daemon_and_not_a_dead_one(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    a_daemon_runs(mailbot)
    dead = me().rpartition(":")[0] + ":999999"  # this host, a process long gone
    engine = db.open_database(mailbot.db_url)
    with Session(engine) as session:
        session.add(DaemonLock(name=f"daemon {dead}", holder=dead, heartbeat=time.time()))
        session.commit()
    engine.dispose()
    capsys.readouterr()
    assert mailbot("check") == 0
    out = capsys.readouterr().out
    assert "1 daemon(s) running: mx9.provider.example:4242" in out
    assert "999999" not in out


@pytest.mark.postgresql_only
def test_a_staff_refusal_waits_for_the_tick_working_the_case(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    friday = MONDAY_4PM - timedelta(days=3)
    ref = deadlock_case(mailbot, tmp_path, capsys, friday)
    refusal, _ = staff_reply(
        TEAM_LEADER, "#deadlock refuse An engineer comes Tuesday", f"RE: [{ref}] x"
    )
    path = tmp_path / "refusal.eml"
    path.write_bytes(refusal)

    engine = db.open_database(mailbot.db_url)
    tick = engine.connect()  # the tick, mid-transaction: the case locked, the letter decided
    tick.execute(
        text('UPDATE "case" SET deadlock_sent_at = :at, deadlock_position = :why WHERE ref = :ref'),
        {"at": MONDAY_4PM - timedelta(hours=2), "why": "We have done all we can.", "ref": ref},
    )
    codes: list[int] = []
    staff = threading.Thread(
        target=lambda: codes.append(
            mailbot("--now", at(MONDAY_4PM - timedelta(hours=2)), "ingest", str(path))
        )
    )
    staff.start()
    try:
        deadline = time.monotonic() + 30
        with engine.connect() as watch:  # until the intake waits for the case's lock
            while not watch.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            ).scalar():
                assert time.monotonic() < deadline, "the intake never waited for the case"
                watch.rollback()
                time.sleep(0.05)
    finally:
        tick.commit()
        tick.close()
        staff.join(60)
        engine.dispose()
    assert codes == [0]
    kinds = [str(e.message["X-Mailbot-Kind"]) for e in mailbot.customer_mail()]
    assert "deadlock_refusal" not in kinds, "the letter had gone: nothing left to refuse"
    [error] = [e for e in mailbot.staff_mail(TEAM_LEADER) if "was not acted on" in e.text]
    assert "no deadlock letter request waiting" in error.text
