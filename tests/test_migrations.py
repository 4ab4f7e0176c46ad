"""The schema comes from alembic revisions, on SQLite and PostgreSQL alike (`db_url` runs both)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlmodel import Session, SQLModel, col, select

from mailbot.cli import main
from mailbot.store import db, migrations
from mailbot.store.models import Case, Inbound, InboundRaw, WeeklyDigest
from tests.conftest import write_config


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database, schema not yet made."""
    engine = db.connect(db_url)
    yield engine
    engine.dispose()


def names(connection: Connection) -> dict[str, tuple[set[str], set[str]]]:
    """Each table's column names and index names, as the database has them."""
    inspector = inspect(connection)
    found = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        columns = {c["name"] for c in inspector.get_columns(table)}
        indexes = {
            i["name"]
            for i in inspector.get_indexes(table)
            if i["name"] and "duplicates_constraint" not in i  # PostgreSQL: a UNIQUE's index
        }
        found[table] = (columns, indexes)
    return found


def expected_names() -> dict[str, tuple[set[str], set[str]]]:
    return {
        name: ({c.name for c in table.columns}, {str(i.name) for i in table.indexes})
        for name, table in SQLModel.metadata.tables.items()
    }


def test_upgrade_head_on_an_empty_database_makes_the_models_schema(engine: Engine) -> None:
    before, after = migrations.upgrade(engine)
    assert (before, after) == (None, migrations.head())
    with engine.connect() as connection:
        assert names(connection) == expected_names()
        # types, nullability, foreign keys too: autogenerate would write an empty revision
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(engine: Engine) -> None:
    from alembic import command

    migrations.upgrade(engine)
    with engine.connect() as connection:
        command.downgrade(migrations.config(connection), "base")
        connection.commit()
        assert names(connection) == {}
    assert migrations.upgrade(engine)[1] == migrations.head()


def test_an_empty_database_gets_the_schema_at_start_up_and_only_once(db_url: str) -> None:
    engines: list[Engine] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            engines.append(db.open_database(db_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engines[0].connect() as connection:
        assert migrations.current(connection) == migrations.head()
        assert names(connection) == expected_names()
    for engine in engines:
        engine.dispose()


@pytest.fixture
def newer_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """This mailbot with one more revision than the database has seen: it adds a column."""
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "9999_test.py").write_text(
        f"""
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{migrations.head()}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("case", sa.Column("test_only", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("case", "test_only")
"""
    )
    real = migrations.config

    def config(connection: Connection | None = None, url: str | None = None) -> Config:
        cfg = real(connection, url)
        cfg.set_main_option("version_locations", f"{migrations.HERE / 'versions'} {versions}")
        cfg.set_main_option("path_separator", "space")
        return cfg

    monkeypatch.setattr(migrations, "config", config)
    monkeypatch.setattr(migrations, "VERSION_DIRS", [*migrations.VERSION_DIRS, versions])
    migrations.scripts.cache_clear()
    yield "9999"
    monkeypatch.undo()
    migrations.scripts.cache_clear()


def cli(tmp_path: Path, db_url: str, *args: str) -> int:
    config = tmp_path / "config.toml"
    write_config(config, imap_port=1, user="nobody", smtp_port=1, db=db_url)
    return main(["--config", str(config), *args])


def test_a_database_behind_the_code_stops_start_up_until_migrated(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    db.open_database(db_url).dispose()  # at this code's head
    was = migrations.head()
    head = request.getfixturevalue("newer_code")
    with pytest.raises(db.SchemaError) as raised:
        db.open_database(db_url)
    message = f"database is at revision {was}, this mailbot needs {head}: run `mailbot migrate`"
    assert str(raised.value) == message

    capsys.readouterr()
    assert cli(tmp_path, db_url, "cases") == 2
    assert capsys.readouterr().err == f"mailbot: {message}\n"

    assert cli(tmp_path, db_url, "migrate") == 0
    assert capsys.readouterr().out.endswith(f": migrated from revision {was} to {head}\n")
    assert cli(tmp_path, db_url, "migrate") == 0
    assert capsys.readouterr().out.endswith(f": already at revision {head}\n")
    assert cli(tmp_path, db_url, "cases") == 0
    engine = create_engine(db_url)
    with engine.connect() as connection:
        assert "test_only" in {c["name"] for c in inspect(connection).get_columns("case")}
    engine.dispose()


def test_migrate_on_an_empty_database_says_so(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(tmp_path, db_url, "migrate") == 0
    out = capsys.readouterr().out
    assert out.endswith(f": migrated from revision none (empty) to {migrations.head()}\n")
    assert "secret" not in out  # the password is not printed


def test_start_up_knows_the_head_revision_and_the_database_s_as_alembic_does(
    db_url: str,
) -> None:
    assert migrations.head() == migrations.scripts().get_current_head()
    engine = db.open_database(db_url)
    with engine.connect() as connection:
        assert (
            migrations.current(connection)
            == MigrationContext.configure(connection).get_current_revision()
        )
    engine.dispose()


def test_a_start_up_at_head_leaves_alembic_unloaded(db_url: str) -> None:
    """alembic, mako and pygments hold some 11 MB: only migrating needs them."""
    db.open_database(db_url).dispose()
    started = (
        "import sys; from mailbot.store import db;"
        f" db.open_database({db_url!r}).dispose();"
        " print(sorted({name.split('.')[0] for name in sys.modules} & {'alembic', 'mako'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", started], capture_output=True, text=True, check=True
    )
    assert done.stdout == "[]\n"


def test_a_database_from_a_newer_mailbot_is_refused(db_url: str) -> None:
    db.open_database(db_url).dispose()
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(db.SchemaError, match="revision 9999, which this mailbot does not know"):
        db.open_database(db_url)


def test_a_database_made_before_migrations_is_adopted_by_migrate(engine: Engine) -> None:
    from alembic import command

    with engine.connect() as connection:  # the tables open_database made before revisions
        command.upgrade(migrations.config(connection), migrations.BASELINE)
        connection.execute(text("DROP TABLE alembic_version"))
        connection.commit()
    with pytest.raises(db.SchemaError, match="run `mailbot migrate`"):
        migrations.check(engine)
    assert migrations.upgrade(engine) == (migrations.UNVERSIONED, migrations.head())
    migrations.check(engine)


def test_a_database_with_strange_tables_and_no_revision_is_not_touched(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text('CREATE TABLE "case" (id INTEGER PRIMARY KEY)'))
    with pytest.raises(db.SchemaError, match="migrate it by hand"):
        migrations.upgrade(engine)
    with engine.connect() as connection:
        assert migrations.current(connection) is None


def stored(db_url: str, **columns: Any) -> Case:
    engine = db.open_database(db_url)
    now = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night the clocks go forward
    fields: dict[str, Any] = {
        "ref": "CMP-2026-000001",
        "customer_email": "c@example.net",
        "customer_name": "C",
        "subject": "s",
        "received_at": now,
        "first_response_due": now,
        "adr_date": now,
        **columns,
    }
    with Session(engine) as session:
        session.add(Case(**fields))
        session.commit()
    with Session(engine) as session:
        case = session.exec(select(Case)).one()
    engine.dispose()
    return case


def test_times_are_stored_as_the_same_instant_whatever_the_server_time_zone(db_url: str) -> None:
    london = timezone(timedelta(hours=1))
    sent = datetime(2026, 7, 1, 10, 0, tzinfo=london)
    case = stored(db_url, escalated_at=sent)
    assert case.escalated_at == sent and case.escalated_at.tzinfo == UTC
    assert case.received_at == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    engine = db.open_database(db_url)
    with Session(engine) as session:  # comparisons in SQL see the same instant
        due = select(Case).where(Case.escalated_at == datetime(2026, 7, 1, 9, 0, tzinfo=UTC))
        assert session.exec(due).one().ref == case.ref
        if engine.dialect.name == "postgresql":
            utc = text("SELECT escalated_at AT TIME ZONE 'UTC' FROM \"case\"")
            assert session.execute(utc).scalar_one() == datetime(2026, 7, 1, 9, 0)
    engine.dispose()


def test_nul_is_dropped_from_text_and_kept_in_bytes(db_url: str) -> None:
    case = stored(db_url, customer_name="Ann\x00 Other", subject="\x00")
    assert (case.customer_name, case.subject) == ("Ann Other", "")
    raw = b"Subject: x\r\n\r\n\x00\xff\x00"
    engine = db.open_database(db_url)
    with Session(engine) as session:
        inbound = Inbound(
            message_id="<a\x00@b>",
            sha256="0" * 64,
            content_sha256="0" * 64,
            size=len(raw),
            received_at=datetime.now(UTC),
            source="file x",
            text="body\x00",
        )
        session.add(inbound)
        session.flush()
        assert inbound.id is not None
        session.add(InboundRaw(inbound_id=inbound.id, raw=raw))
        session.commit()
    with Session(engine) as session:
        # the same stripping applies to lookups, so the stored copy is found
        found = session.exec(
            select(Inbound).where(Inbound.message_id == "<a\x00@b>", Inbound.sha256 == "0" * 64)
        ).first()
        assert found is not None
        kept = db.raw_bytes(session, found.id)
        assert (kept, found.message_id, found.text) == (raw, "<a@b>", "body")
    engine.dispose()


def test_copies_stored_as_two_messages_before_0002_stay_two(engine: Engine) -> None:
    from alembic import command

    raw = b"Message-ID: <1@x>\r\nSubject: s\r\n\r\nbody\r\n"
    with engine.connect() as connection:
        command.upgrade(migrations.config(connection), "0001")
        for n, copy in enumerate((raw, b"Received: by mx2\r\n" + raw)):
            connection.execute(
                text(
                    "INSERT INTO inbound (message_id, sha256, raw, size, received_at, source,"
                    " disposition, reason, subject, from_address, from_name, in_reply_to,"
                    " \"references\", text, parser) VALUES ('<1@x>', :sha, :raw, 1,"
                    " '2026-11-30 10:00:00', 'file', 'CASE', '', '', '', '', '', '', '', '')"
                ),
                {"sha": str(n), "raw": copy},
            )
        connection.commit()
        command.upgrade(migrations.config(connection), "head")
        connection.commit()
        keys = connection.execute(text("SELECT content_sha256 FROM inbound ORDER BY id")).all()
    assert len(keys[0][0]) == 64 and keys[1][0] == "1"  # the second kept apart by its own hash


# a case as the schema of 0002 to 0004 kept it (statuses by their members' names)
OLD_CASE = text(
    'INSERT INTO "case" (ref, customer_email, customer_addresses, customer_name,'
    " subject, received_at, status, level, details_found, first_response_due,"
    " adr_date, update_interval_days, update_interval_agreed_by, flags,"
    " resolution_summary, reopened_from, adr_notice_decision, deadlock_position,"
    " set_aside_reason) VALUES (:ref, 'c@example.net', '', 'C', 's',"
    " '2026-11-30 10:00:00', :status, 'TEAM_LEADER', '', '2026-12-01 10:00:00',"
    " '2027-01-25 10:00:00', 1, '', '', '', '', '', '', '')"
)


def test_a_database_from_before_the_reports_migrates_with_its_cases_kept(engine: Engine) -> None:
    from alembic import command

    with engine.connect() as connection:
        command.upgrade(migrations.config(connection), "0002")
        connection.execute(OLD_CASE, {"ref": "CMP-2026-000001", "status": "RESOLVED"})
        connection.commit()
    assert migrations.upgrade(engine) == ("0002", migrations.head())
    with Session(engine) as session:
        case = session.exec(select(Case)).one()
        assert (case.ref, case.personal_data_erased_at) == ("CMP-2026-000001", None)
        assert session.exec(select(WeeklyDigest)).all() == []


def test_messages_stored_before_0004_keep_their_bytes_in_their_own_table(engine: Engine) -> None:
    from alembic import command

    raws = [b"Message-ID: <1@x>\r\n\r\nbody\r\n", b"Message-ID: <2@x>\r\n\r\n\x00\xff\r\n"]
    with engine.connect() as connection:
        command.upgrade(migrations.config(connection), "0003")
        for n, raw in enumerate(raws):
            connection.execute(
                text(
                    "INSERT INTO inbound (message_id, sha256, content_sha256, raw, size,"
                    " received_at, source, disposition, reason, subject, from_address,"
                    ' from_name, in_reply_to, "references", text, parser) VALUES (:id, :sha,'
                    " :sha, :raw, 1, '2026-11-30 10:00:00', 'file', 'CASE', '', '', '', '', '',"
                    " '', '', '')"
                ),
                {"id": f"<{n}@x>", "sha": str(n), "raw": raw},
            )
        connection.commit()
    assert migrations.upgrade(engine) == ("0003", migrations.head())
    with Session(engine) as session:
        rows = session.exec(select(Inbound).order_by(col(Inbound.id))).all()
        assert [db.raw_bytes(session, row.id) for row in rows] == raws
    assert "raw" not in {column["name"] for column in inspect(engine).get_columns("inbound")}
    with engine.connect() as connection:  # and back: the bytes on the inbound rows again
        command.downgrade(migrations.config(connection), "0003")
        connection.commit()
        back = connection.execute(text("SELECT raw FROM inbound ORDER BY id")).scalars().all()
    assert back == raws


def test_cases_stored_before_0005_keep_their_status_and_have_no_ending_recorded(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from alembic import command

    with engine.connect() as connection:
        command.upgrade(migrations.config(connection), "0004")
        for n, status in enumerate(("OPEN", "RESOLVED"), 1):
            connection.execute(OLD_CASE, {"ref": f"CMP-2026-00000{n}", "status": status})
        connection.commit()
    assert migrations.upgrade(engine) == ("0004", migrations.head())
    with Session(engine) as session:
        stored = session.exec(select(Case).order_by(col(Case.ref))).all()
        assert [(c.ref, c.status) for c in stored] == [
            ("CMP-2026-000001", "open"),
            ("CMP-2026-000002", "resolved"),
        ]
        for case in stored:
            assert (case.merged_into, case.adr_scheme_ref, case.adr_outcome) == ("", "", "")
            assert (case.remedy, case.remedy_told) == ("", "")
            assert case.adr_referred_at is None and case.adr_case_file_due is None
            assert case.adr_case_file_reminded_at is None and case.adr_outcome_at is None
            assert case.remedy_due is None and case.remedy_done_at is None
    capsys.readouterr()
    assert cli(tmp_path, db_url, "cases", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["status"], c["merged_into"], c["adr_scheme"]) for c in listed] == [
        ("open", None, None),
        ("resolved", None, None),
    ]
