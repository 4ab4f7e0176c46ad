"""Installed as users install it: the operator's own letters, the start-up check of every
template, and ingest's answer to a file that is not there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mailbot import templating
from mailbot.cli import main
from mailbot.config import load_settings
from mailbot.correspondence import PERSON_LETTERS, specimens
from mailbot.templating import TemplateFault, Templates, packaged_templates
from tests.conftest import TEAM_LEADER, Mailbot

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "01-broadband-complaint.eml"
NOW = "2026-11-23T10:15:00+00:00"


def own_letters(config: Path, folder: Path) -> None:
    with config.open("a") as file:
        file.write(f'\n[letters]\ntemplates_dir = "{folder}"\n')


def serverless_config(tmp_path: Path) -> Path:
    """Settings enough to start: nothing listens on the mail ports, nothing is sent."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[mailbox]\nhost = "127.0.0.1"\nusername = "complaints"\npassword = "p"\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 9\nsecurity = "none"\n'
        'from_address = "complaints@provider.example"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "mailbot.db"}"\n'
    )
    return config


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.mark.sqlite_only
def test_an_operators_acknowledgement_goes_and_every_letter_they_left_is_ours(
    mailbot: Mailbot, tmp_path: Path
) -> None:
    own = tmp_path / "letters"
    own.mkdir()
    (own / "acknowledgement.txt.j2").write_text(
        "Dear {{ customer_name }},\n\nYour complaint is {{ case.ref }}. We answer by {{ due }}.\n"
        '{% include "_adr.txt.j2" %}'
    )
    own_letters(mailbot.config, own)

    assert mailbot("--now", NOW, "ingest", str(SAMPLE)) == 0

    [ack] = mailbot.customer_mail()
    assert "Dear Alice Thornton,\r\n\r\nYour complaint is CMP-2026-000001. We answer" in ack.text
    assert "Ombudsman Services is free for you to use" in ack.text  # our _adr.txt.j2
    html = ack.message.get_body(("html",))  # their words, in our layout
    assert html is not None and "Your complaint is" in html.get_content()
    assert '<span class="ref">CMP-2026-000001</span>. We answer by' in html.get_content()
    [notification] = mailbot.staff_mail(TEAM_LEADER)
    assert "Reply to this email to answer the customer" in notification.text


@pytest.mark.parametrize(
    ("name", "source", "problem"),
    [
        ("acknowledgement.txt.j2", "Dear {% if customer_name %}you", "line 1: Unexpected end"),
        (
            "update.txt.j2",
            "{{ case.ref }}{% if not said %}{{ the_history }}{% endif %}",
            "unknown variable(s) the_history",
        ),
        ("_adr.txt.j2", "Call {{ adr.fax }}", "has no attribute 'fax'"),
        ("resolution.txt.j2", "{{ reopen_days + ' days' }}", "unsupported operand type(s)"),
    ],
)
def test_a_broken_template_stops_start_up_in_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, source: str, problem: str
) -> None:
    config = serverless_config(tmp_path)
    own = tmp_path / "letters"
    own.mkdir()
    (own / name).write_text(source)
    own_letters(config, own)

    assert main(["--config", str(config), "ingest", str(SAMPLE)]) == 2

    line = one_line(capsys)
    assert line.startswith(f"mailbot: configuration error: template {own / name}, line ")
    assert problem in line
    assert not (tmp_path / "mailbot.db").exists()  # nothing stored, so nothing quarantined


def test_an_operators_layout_frames_the_html_of_every_letter(tmp_path: Path) -> None:
    settings = load_settings(serverless_config(tmp_path), environ={})
    own = tmp_path / "letters"
    own.mkdir()
    (own / "_layout.html.j2").write_text("<main><h6>{{ company_name }}</h6>{{ body }}</main>")
    templates = Templates("Europe/London", own)
    for kind, context in specimens(settings, templates):
        if kind in PERSON_LETTERS:
            templates.check(kind, context, person=True)
            _, html = templates.letter(kind, context)
            assert html.startswith("<main><h6>Claranet SOHO</h6><h1>"), kind


def test_an_operators_html_of_one_letter_stops_start_up_as_no_longer_read(tmp_path: Path) -> None:
    settings = load_settings(serverless_config(tmp_path), environ={})
    own = tmp_path / "letters"
    own.mkdir()
    (own / "acknowledgement.html.j2").write_text("<p>{{ case.ref }}, ours</p>")
    templates = Templates("Europe/London", own)
    [context] = [c for kind, c in specimens(settings, templates) if kind == "acknowledgement"]
    with pytest.raises(TemplateFault, match=r"acknowledgement\.html\.j2: is no longer read"):
        templates.check("acknowledgement", context, person=True)


def test_a_letter_missing_from_the_package_stops_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a wheel without its templates looked like: every complaint quarantined, exit 0
    packaged = tmp_path / "packaged"
    shutil.copytree(packaged_templates(), packaged)
    (packaged / "update.txt.j2").unlink()
    monkeypatch.setattr(templating, "packaged_templates", lambda: packaged)

    assert main(["--config", str(serverless_config(tmp_path)), "cases"]) == 2

    assert one_line(capsys) == (
        f"mailbot: configuration error: template update.txt.j2: not found in {packaged}"
    )


def test_a_templates_dir_that_is_not_a_directory_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = serverless_config(tmp_path)
    own_letters(config, tmp_path / "nowhere")

    assert main(["--config", str(config), "cases"]) == 2

    assert one_line(capsys) == (
        f"mailbot: configuration error: letters.templates_dir: not a directory: "
        f"'{tmp_path / 'nowhere'}' (in config.toml)"
    )


def test_every_letter_mailbot_writes_is_checked_at_start_up(tmp_path: Path) -> None:
    settings = load_settings(serverless_config(tmp_path), environ={})
    checked = {kind for kind, _ in specimens(settings, Templates("Europe/London"))}
    ours = {
        p.name.removesuffix(".txt.j2")
        for p in packaged_templates().glob("*.txt.j2")
        if not p.name.startswith("_")
    }
    assert checked == ours


def test_ingesting_a_file_that_is_not_there_says_so_in_one_line_and_does_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = serverless_config(tmp_path)
    assert main(["--config", str(config), "cases"]) == 0  # the database made, and empty
    capsys.readouterr()

    assert main(["--config", str(config), "ingest", str(SAMPLE), "NOSUCHFILE"]) == 2

    assert one_line(capsys) == "mailbot: cannot read NOSUCHFILE: No such file or directory"
    assert main(["--config", str(config), "cases", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # the sample before it was not ingested
