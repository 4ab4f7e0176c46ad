"""The admin's first hour: check reads only, settings in force, help, logs on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from alembic import command as alembic
from sqlalchemy import create_engine, inspect

from mailbot import logs
from mailbot.cli import main, parser
from mailbot.store import db, migrations
from tests.conftest import PASSWORD, Mailbot
from tests.corpus import corpus_files
from tests.test_install import serverless_config


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


def json_lines(stderr: str) -> list[dict[str, str]]:
    """Every line of STDERR as a JSON object (fails on any line that is not one)."""
    return [json.loads(line) for line in stderr.splitlines()]


def test_json_logs_carry_the_mail_libraries_say_nothing_outside_them(tmp_path: Path) -> None:
    mails = corpus_files("mail-parser/tests/mails")  # PNGs, winmail.dat, broken parts
    config = serverless_config(tmp_path)
    mailbot = [sys.executable, "-m", "mailbot", "--config", str(config), "--log-format", "json"]
    done = subprocess.run(
        [*mailbot, "ingest", *map(str, mails)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "always"},  # every warning shown, none hidden
    )
    assert done.returncode == 75  # no SMTP server: the letters wait
    entries = json_lines(done.stderr)
    per_message = [e for e in entries if e["message"].startswith("file=")]
    assert len(per_message) == len(mails), "one line per message, as ever"
    assert "not handled" not in done.stderr


def test_an_uncaught_error_is_one_json_line_with_its_traceback(tmp_path: Path) -> None:
    config = serverless_config(tmp_path)
    (tmp_path / "mailbot.db").write_bytes(b"not a database, a stray file" * 100)
    done = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(config), "--log-format", "json", "cases"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    [entry] = json_lines(done.stderr)
    assert entry["level"] == "CRITICAL" and entry["message"].startswith("uncaught error: ")
    assert "Traceback" in entry["error"] and "file is not a database" in entry["error"]


@pytest.mark.parametrize("json_lines_wanted", [True, False])
def test_a_librarys_warning_goes_through_the_log_format(
    json_lines_wanted: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logging.INFO, json_lines_wanted)
    try:
        warnings.warn_explicit("a doubtful call", UserWarning, "somelib.py", 7)
    finally:
        logging.captureWarnings(False)
    [line] = capsys.readouterr().err.splitlines()
    if json_lines_wanted:
        assert json.loads(line)["logger"] == "py.warnings"
        assert "somelib.py:7: UserWarning: a doubtful call" in json.loads(line)["message"]
    else:
        assert " WARNING py.warnings: somelib.py:7: UserWarning: a doubtful call" in line


ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "mailbot.service"


def test_the_shipped_systemd_unit_is_type_notify_with_a_watchdog_and_runs_the_daemon() -> None:
    lines = [line.strip() for line in UNIT.read_text().splitlines()]
    assert "Type=notify" in lines and "NotifyAccess=main" in lines
    assert any(line.startswith("WatchdogSec=") for line in lines)
    assert "RestartPreventExitStatus=2" in lines  # a wrong setting: no restart loop
    [start] = [line.removeprefix("ExecStart=") for line in lines if line.startswith("ExecStart=")]
    program, *arguments = start.split()
    assert program.endswith("/bin/mailbot")
    assert parser().parse_args(arguments).command == "run"
    operating = (ROOT / "docs" / "operating.md").read_text()
    real = operating.split("\n## Running it for real\n")[1].split("\n## ")[0]
    assert "contrib/mailbot.service" in real and "[Service]" not in real


def test_systemd_finds_nothing_wrong_in_the_shipped_unit(tmp_path: Path) -> None:
    unit = tmp_path / "mailbot.service"
    here = Path(sys.executable).parent / "mailbot"  # (verify wants an ExecStart that exists)
    unit.write_text(UNIT.read_text().replace("/srv/mailbot/.venv/bin/mailbot", str(here)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
