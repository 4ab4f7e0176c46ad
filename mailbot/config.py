"""Settings from config.toml, MAILBOT_<SECTION>_<KEY> variables and a .env file."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from dotenv import dotenv_values

Security = Literal["ssl", "starttls", "none"]


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class MailboxSettings:
    """[mailbox]: the complaints IMAP mailbox."""

    host: str
    username: str
    password: str
    port: int = 993
    security: Security = "ssl"
    folder: str = "INBOX"
    processed_folder: str = "mailbot/processed"
    quarantine_folder: str = "mailbot/quarantine"
    poll_seconds: int = 60
    batch_size: int = 100


@dataclass(frozen=True)
class SmtpSettings:
    """[smtp]: where mailbot sends from."""

    host: str
    from_address: str
    port: int = 587
    security: Security = "starttls"
    username: str = ""
    password: str = ""
    from_name: str = "Complaints team"
    timeout_seconds: int = 30


@dataclass(frozen=True)
class DatabaseSettings:
    """[database]: an SQLAlchemy URL."""

    url: str = "sqlite:///data/mailbot.db"


@dataclass(frozen=True)
class ProcedureSettings:
    """[procedure]: the choices PROCEDURE.md leaves open."""

    timezone: str = "Europe/London"
    region: str = "GB-ENG"
    case_ref_format: str = "CMP-{year}-{number:06d}"
    opening_time: str = "09:00"
    closing_time: str = "17:30"
    adr_wait_weeks: int = 8
    company_name: str = "Claranet SOHO"

    @property
    def opening(self) -> time:
        return time.fromisoformat(self.opening_time)

    @property
    def closing(self) -> time:
        return time.fromisoformat(self.closing_time)


@dataclass(frozen=True)
class AdrSchemeSettings:
    """[adr_scheme]: the Ofcom-approved ADR scheme named in the code."""

    name: str = "Ombudsman Services"
    website: str = "www.ombudsman-services.org"
    phone: str = "0330 440 1614"
    email: str = "osenquiries@os-communications.org"


@dataclass(frozen=True)
class Settings:
    """Every setting mailbot reads, checked at start-up."""

    mailbox: MailboxSettings
    smtp: SmtpSettings
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    procedure: ProcedureSettings = field(default_factory=ProcedureSettings)
    adr_scheme: AdrSchemeSettings = field(default_factory=AdrSchemeSettings)

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset({self.smtp.from_address.lower(), self.mailbox.username.lower()})


_SECTIONS: dict[str, type[Any]] = {
    "mailbox": MailboxSettings,
    "smtp": SmtpSettings,
    "database": DatabaseSettings,
    "procedure": ProcedureSettings,
    "adr_scheme": AdrSchemeSettings,
}


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """--config, else $MAILBOT_CONFIG, else ./config.toml."""
    return Path(explicit or environ.get("MAILBOT_CONFIG") or "config.toml")


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read PATH, then let MAILBOT_<SECTION>_<KEY> (environment, then .env) override it."""
    env: dict[str, str] = {}
    dotenv = path.parent / ".env"
    if dotenv.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), f"not valid TOML ({exc})") from None
    elif not any(k.startswith("MAILBOT_") and k != "MAILBOT_CONFIG" for k in env):
        raise ConfigError(str(path), "file not found (give --config or set MAILBOT_CONFIG)")

    for name in raw:
        if name not in _SECTIONS:
            raise ConfigError(name, f"unknown section (known: {', '.join(_SECTIONS)})")
    sections = {
        name: _section(name, cls, raw.get(name, {}), env) for name, cls in _SECTIONS.items()
    }
    settings = Settings(**sections)
    _check(settings)
    return settings


def _section(name: str, cls: type[Any], values: Any, env: Mapping[str, str]) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(name, "must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{name}.{key}", "unknown key")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        key = f"{name}.{f.name}"
        env_value = env.get(f"MAILBOT_{name}_{f.name}".upper())
        if env_value is not None:
            kwargs[f.name] = _coerce(key, hints[f.name], env_value, from_env=True)
        elif f.name in values:
            kwargs[f.name] = _coerce(key, hints[f.name], values[f.name], from_env=False)
        elif f.default is f.default_factory:  # neither a default nor a factory: required
            raise ConfigError(key, "missing (set it in config.toml or " + _env_name(key) + ")")
    return cls(**kwargs)


def _env_name(key: str) -> str:
    return "MAILBOT_" + key.replace(".", "_").upper()


def _coerce(key: str, hint: Any, value: Any, *, from_env: bool) -> Any:
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(key, f"must be an integer, not {value!r}")
        if isinstance(value, int):
            return value
        if from_env and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ConfigError(key, f"must be an integer, not {value!r}")
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, not {value!r}")
        return value
    choices = get_args(hint)
    if choices:
        if value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value
    raise AssertionError(f"no coercion for {key}")  # pragma: no cover


def _check(settings: Settings) -> None:
    """Checks that span more than the type of one key."""
    for section in ("mailbox", "smtp"):
        port = getattr(settings, section).port
        if not 0 < port < 65536:
            raise ConfigError(f"{section}.port", f"must be between 1 and 65535, not {port}")
    if settings.mailbox.poll_seconds < 1:
        raise ConfigError("mailbox.poll_seconds", "must be at least 1")
    if "@" not in settings.smtp.from_address:
        raise ConfigError(
            "smtp.from_address", f"not an email address: {settings.smtp.from_address!r}"
        )
    for key in ("opening_time", "closing_time"):
        try:
            time.fromisoformat(getattr(settings.procedure, key))
        except ValueError:
            raise ConfigError(f"procedure.{key}", "must be a time like 09:00") from None
    try:
        settings.procedure.case_ref_format.format(year=2026, number=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            "procedure.case_ref_format", f"must use only {{year}} and {{number}} ({exc})"
        ) from None
    if not settings.database.url.partition("://")[1]:
        raise ConfigError("database.url", f"not a database URL: {settings.database.url!r}")
