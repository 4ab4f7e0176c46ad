"""The admin's first hour: check reads only, settings in force, help, logs on stderr."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from importlib.metadata import version

import pytest
from alembic import command as alembic
from sqlalchemy import create_engine, inspect

from mailbot.cli import main, parser
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
        alembic.upgrade(migrations.config(connection), migrations.BASELINE)
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


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def test_help_lists_every_command_with_one_line_each_and_two_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "developer" not in out and "The command line" not in out
    listing = out.split("commands:\n")[1].split("\n\n")[0]
    for name, command in subcommands(parser()).items():
        assert re.search(rf"^    {name} +\S", listing, re.M), name
        assert command.description
    examples = out.split("examples:\n")[1].split("\n\n")[0].splitlines()
    assert len(examples) == 2 and all(line.startswith("  mailbot ") for line in examples)


def test_each_commands_help_says_what_it_does_its_exit_codes_and_an_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def every(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[list[str]]:
        for name, command in subcommands(parser).items():
            yield [*path, name]
            yield from every(command, [*path, name])

    commands = list(every(parser(), []))
    assert ["quarantine", "retry"] in commands and ["check"] in commands
    for command in commands:
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = capsys.readouterr().out
        description = out.split("\n\n")[1]
        assert len(description) > 60, command  # more than the one line of the listing
        codes = out.split("exit codes:\n")[1].split("\n\n")[0]
        assert re.search(r"^  0 ", codes, re.M) and re.search(r"^  2 ", codes, re.M), command
        assert re.search(r"example:\n  mailbot ", out), command


def test_version_says_which_mailbot(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"mailbot {version('mailbot')}\n"
