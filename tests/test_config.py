"""Settings: the documented example, environment overrides, one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailbot.cli import main
from mailbot.config import _SECTIONS, ConfigError, StaffSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = '[mailbox]\nhost = "h"\nusername = "u"\npassword = "p"\n[smtp]\nhost = "s"\n'


def test_the_example_documents_every_key_and_loads() -> None:
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    for section, cls in _SECTIONS.items():
        assert set(example[section]) == set(cls.model_fields), section
    for member in example["staff"]:
        assert set(member) == set(StaffSettings.model_fields)
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
            "smtp.security: must be one of 'ssl', 'starttls' or 'none', not 'tls' (in config.toml)",
        ),
        ('from_address = "c@x.example"\nprot = 25\n', "smtp.prot: unknown key"),
        (
            'from_address = "nobody"\n',
            "smtp.from_address: not an email address: 'nobody' (in config.toml)",
        ),
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


OAUTH2 = (
    '[mailbox]\nhost = "h"\nusername = "c@x.example"\nauth = "oauth2"\n'
    '[smtp]\nhost = "s"\nfrom_address = "c@x.example"\n'
)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "",
            'oauth2.provider: missing: mailbox.auth = "oauth2" needs "microsoft", "google" or'
            ' "generic" (set it in config.toml or MAILBOT_OAUTH2_PROVIDER)',
        ),
        (
            '[oauth2]\nprovider = "azure"\n',
            'oauth2.provider: must be "microsoft", "google" or "generic", not \'azure\''
            " (in config.toml)",
        ),
        (
            '[oauth2]\nprovider = "generic"\nclient_id = "app"\n',
            'oauth2.token_url: missing: provider = "generic" needs the token endpoint'
            " (set it in config.toml or MAILBOT_OAUTH2_TOKEN_URL)",
        ),
        (
            '[oauth2]\nprovider = "microsoft"\nclient_id = "app"\nclient_secret = "s"\n',
            "oauth2.tenant_id: missing: the directory (tenant) id of the Entra app"
            " (set it in config.toml or MAILBOT_OAUTH2_TENANT_ID)",
        ),
        (
            '[oauth2]\nprovider = "microsoft"\ntenant_id = "t"\n',
            "oauth2.client_id: missing: the application (client) id"
            " (set it in config.toml or MAILBOT_OAUTH2_CLIENT_ID)",
        ),
        (
            '[oauth2]\nprovider = "microsoft"\ntenant_id = "t"\nclient_id = "app"\n',
            "oauth2.client_secret: missing: the client's secret"
            " (set it in config.toml or MAILBOT_OAUTH2_CLIENT_SECRET)",
        ),
        (
            '[oauth2]\nprovider = "google"\n',
            "oauth2.service_account_file: missing: a service account with domain-wide"
            " delegation, or else a refresh_token"
            " (set it in config.toml or MAILBOT_OAUTH2_SERVICE_ACCOUNT_FILE)",
        ),
        (
            '[oauth2]\nprovider = "google"\nservice_account_file = "/nonexistent.json"\n',
            "oauth2.service_account_file: not a file: '/nonexistent.json' (in config.toml)",
        ),
    ],
)
def test_oauth2_without_what_its_provider_needs_is_named(
    tmp_path: Path, extra: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(OAUTH2 + extra)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == message


def test_oauth2_needs_no_password_and_takes_its_secret_from_the_environment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        OAUTH2.replace("[smtp]\n", '[smtp]\nusername = "c@x.example"\nauth = "oauth2"\n')
        + '[oauth2]\nprovider = "microsoft"\ntenant_id = "t"\nclient_id = "app"\n'
    )
    settings = load_settings(path, environ={"MAILBOT_OAUTH2_CLIENT_SECRET": "from-env"})
    assert settings.oauth2.client_secret == "from-env"
    assert settings.oauth2.scopes == "https://outlook.office365.com/.default"
    assert settings.mailbox.password == ""


def test_smtp_oauth2_needs_a_username(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(OAUTH2.replace("[smtp]\n", '[smtp]\nauth = "oauth2"\n'))
    with pytest.raises(ConfigError, match=r"^smtp\.username: empty"):
        load_settings(path, environ={})


def test_password_login_still_needs_a_password(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL.replace('password = "p"\n', "") + 'from_address = "c@x.example"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == (
        "mailbox.password: missing (set it in config.toml or MAILBOT_MAILBOX_PASSWORD)"
    )


def test_a_misspelt_variable_in_dotenv_stops_start_up_naming_the_closest_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + 'from_address = "c@x.example"\n')
    (tmp_path / ".env").write_text("MAILBOT_SMTP_TIMEOUTSECONDS=5\n")

    assert main(["--config", str(path), "cases"]) == 2

    assert capsys.readouterr().err.strip() == (
        "mailbot: configuration error: MAILBOT_SMTP_TIMEOUTSECONDS: no such setting"
        " (did you mean MAILBOT_SMTP_TIMEOUT_SECONDS?)"
    )


def test_a_variable_in_the_environment_that_names_nothing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + 'from_address = "c@x.example"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"MAILBOT_WHATEVER": "1"})
    assert str(caught.value) == "MAILBOT_WHATEVER: no such setting"
    # what mailbot itself and its test suite read is no setting, and no typo either
    environ = {"MAILBOT_CONFIG": str(path), "MAILBOT_CORPUS": "/srv/corpus"}
    assert load_settings(path, environ=environ).smtp.timeout_seconds == 30


@pytest.mark.parametrize(
    ("environ", "dotenv", "message"),
    [
        (
            {},
            "",
            "smtp.timeout_seconds: must be an integer, not 'soon' (in config.toml)",
        ),
        (
            {"MAILBOT_SMTP_TIMEOUT_SECONDS": "later"},
            "",
            "MAILBOT_SMTP_TIMEOUT_SECONDS: must be an integer, not 'later' (in the environment)",
        ),
        (
            {},
            "MAILBOT_SMTP_TIMEOUT_SECONDS=never\n",
            "MAILBOT_SMTP_TIMEOUT_SECONDS: must be an integer, not 'never' (in .env)",
        ),
        (
            {},
            "MAILBOT_SMTP_FROM_ADDRESS=nobody\n",
            "MAILBOT_SMTP_FROM_ADDRESS: not an email address: 'nobody' (in .env)",
        ),
    ],
)
def test_a_wrong_value_names_where_it_came_from(
    tmp_path: Path, environ: dict[str, str], dotenv: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + 'from_address = "c@x.example"\ntimeout_seconds = "soon"\n')
    (tmp_path / ".env").write_text(dotenv)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ)
    assert str(caught.value) == message
