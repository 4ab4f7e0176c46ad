"""The admin's first hour: check reads only, settings in force, help, logs on stderr."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from mailbot.store import db, migrations
from tests.conftest import PASSWORD, Mailbot


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    engine.dispose()
    return names


def test_check_on_a_new_install_creates_no_database_and_says_so(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mailbot("check") == 0

    out = capsys.readouterr().out
    assert "IMAP ok" in out and "SMTP ok" in out
    path = db.sqlite_file(mailbot.db_url)
    if path is not None:
        assert not path.exists()
        assert f"database not made yet: {path} does not exist: `mailbot run`" in out
    else:
        assert tables(mailbot.db_url) == set()
        assert "database not made yet: empty: `mailbot run` (or `mailbot migrate`)" in out


def test_check_names_an_old_schema_in_words_and_migrates_nothing(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = db.connect(mailbot.db_url)
    with engine.connect() as connection:
        command.upgrade(migrations.config(connection), migrations.BASELINE)
        connection.commit()

    assert mailbot("check") == 2

    assert capsys.readouterr().out.splitlines()[-1] == (
        f"database NOT READY: database is at revision {migrations.BASELINE}, "
        f"this mailbot needs {migrations.head()}: run `mailbot migrate`"
    )
    with engine.connect() as connection:
        assert migrations.current(connection) == migrations.BASELINE
    engine.dispose()


def test_check_on_a_database_in_use_reads_it_as_it_is(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mailbot("cases") == 0  # a start-up: the schema is made
    capsys.readouterr()

    assert mailbot("check") == 0

    assert "database ok: " in capsys.readouterr().out


def test_check_settings_shows_what_is_in_force_and_where_from_with_secrets_masked(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", "smtp-secret")
    monkeypatch.setenv("MAILBOT_SMTP_TIMEOUT_SECONDS", "7")
    (mailbot.config.parent / ".env").write_text("MAILBOT_OAUTH2_CLIENT_SECRET=oauth-secret\n")

    assert mailbot("check", "--settings") == 0

    out = capsys.readouterr().out
    assert f'"{PASSWORD}"' not in out and "smtp-secret" not in out and "oauth-secret" not in out
    lines = out.splitlines()
    mailbox, smtp = lines.index("[mailbox]"), lines.index("[smtp]")
    assert 'password = "********"' in lines[mailbox:smtp]
    assert 'password = "********"  # MAILBOT_SMTP_PASSWORD in the environment' in lines
    assert "timeout_seconds = 7  # MAILBOT_SMTP_TIMEOUT_SECONDS in the environment" in lines
    assert 'client_secret = "********"  # MAILBOT_OAUTH2_CLIENT_SECRET in .env' in lines
    assert 'refresh_token = ""  # default' in lines
    assert 'host = "127.0.0.1"' in lines and "[[staff]]" in lines
    assert "IMAP ok" in out  # and then the checks, as ever
