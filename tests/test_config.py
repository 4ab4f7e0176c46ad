"""Settings: the documented example, environment overrides, one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailbot.config import _SECTIONS, ConfigError, StaffMember, load_settings

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = '[mailbox]\nhost = "h"\nusername = "u"\npassword = "p"\n[smtp]\nhost = "s"\n'


def test_the_example_documents_every_key_and_loads() -> None:
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    for section, cls in _SECTIONS.items():
        assert set(example[section]) == set(cls.model_fields), section
    for member in example["staff"]:
        assert set(member) == set(StaffMember.model_fields)
    settings = load_settings(ROOT / "config.example.toml", environ={})
    assert settings.procedure.adr_wait_weeks == 8
    assert settings.database.url == "sqlite:///data/mailbot.db"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + 'from_address = "c@x.example"\n')
    environ = {
        "MAILBOT_SMTP_PASSWORD": "s3cret",
        "MAILBOT_MAILBOX_PORT": "1143",
        "MAILBOT_MAILBOX_PROCESSED_FOLDER": "done",
        "MAILBOT_STAFF_AUTH_REQUIRE": "none",  # [staff_auth], not a [[staff]] member
        "MAILBOT_ALERTS_TO": "ops@x.example, it@x.example",
        "MAILBOT_MAILBOX_IDLE": "false",
    }
    settings = load_settings(path, environ=environ)
    assert settings.smtp.password == "s3cret"
    assert settings.mailbox.port == 1143
    assert settings.mailbox.processed_folder == "done"
    assert settings.staff_auth.require == "none"
    assert settings.alerts.to == ["ops@x.example", "it@x.example"]
    assert settings.mailbox.idle is False


def test_secrets_come_from_a_dotenv_file_beside_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + 'from_address = "c@x.example"\n')
    (tmp_path / ".env").write_text("MAILBOT_MAILBOX_PASSWORD=from-dotenv\n")
    assert load_settings(path, environ={}).mailbox.password == "from-dotenv"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", "smtp.from_address: missing (set it in config.toml or MAILBOT_SMTP_FROM_ADDRESS)"),
        (
            'from_address = "c@x.example"\nsecurity = "tls"\n',
            "smtp.security: must be one of 'ssl', 'starttls' or 'none', not 'tls'",
        ),
        ('from_address = "c@x.example"\nprot = 25\n', "smtp.prot: unknown key"),
        ('from_address = "nobody"\n', "smtp.from_address: not an email address: 'nobody'"),
    ],
)
def test_a_wrong_or_missing_key_is_named(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + extra)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == message


def test_a_missing_file_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", environ={})
