"""Settings from config.toml, MAILBOT_<SECTION>_<KEY> variables and a .env file."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, time, timedelta
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
    idle: bool = True  # wait in IMAP IDLE when the server offers it; polling stays the fallback


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
    give_up_after: str = "2d"  # a message the server keeps refusing this long is marked failed

    @property
    def give_up_delta(self) -> timedelta:
        return parse_duration(self.give_up_after)


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
    extra_closed_days: list[str] = field(default_factory=list)  # "2026-12-24", ...
    update_cutoff: str = "16:00"
    auto_escalate_working_days: int = 10
    deadlock_decision_working_days: int = 1
    reopen_days: int = 28
    tick_seconds: int = 60
    deadlock_phrases: list[str] = field(default_factory=list)  # added to the built-in ones
    acknowledge_out_of_hours: bool = True  # R2: false holds the acknowledgement to business time

    @property
    def opening(self) -> time:
        return time.fromisoformat(self.opening_time)

    @property
    def closing(self) -> time:
        return time.fromisoformat(self.closing_time)

    @property
    def cutoff(self) -> time:
        return time.fromisoformat(self.update_cutoff)

    @property
    def closed_days(self) -> frozenset[date]:
        return frozenset(date.fromisoformat(d) for d in self.extra_closed_days)


@dataclass(frozen=True)
class AdrSchemeSettings:
    """[adr_scheme]: the Ofcom-approved ADR scheme named in the code."""

    name: str = "Ombudsman Services"
    website: str = "www.ombudsman-services.org"
    phone: str = "0330 440 1614"
    email: str = "osenquiries@os-communications.org"
    referral_limit_months: int = 12


@dataclass(frozen=True)
class AlertSettings:
    """[alerts]: who hears about what needs an admin."""

    to: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LimitSettings:
    """[limits]: what keeps mailbot from flooding anyone or being flooded."""

    auto_replies_per_address_per_day: int = 5
    max_message_bytes: int = 25 * 1024 * 1024


Role = Literal["agent", "team_leader", "manager"]


@dataclass(frozen=True)
class StaffMember:
    """[[staff]]: someone who works the cases from their own mail client."""

    email: str
    name: str
    role: Role


@dataclass(frozen=True)
class StaffAuthSettings:
    """[staff_auth]: what proves a message really comes from staff."""

    trusted_authserv_ids: list[str] = field(default_factory=list)
    require: Literal["dmarc", "dkim", "none"] = "dmarc"


@dataclass(frozen=True)
class NotificationSettings:
    """[notifications]: what mailbot tells staff."""

    confirm_staff_commands: bool = True


@dataclass(frozen=True)
class LetterSettings:
    """[letters]: the operator's own wording of the letters."""

    templates_dir: str = ""  # their templates; any missing there is the packaged one

    @property
    def own_templates(self) -> Path | None:
        return Path(self.templates_dir) if self.templates_dir else None


@dataclass(frozen=True)
class Settings:
    """Every setting mailbot reads, checked at start-up."""

    mailbox: MailboxSettings
    smtp: SmtpSettings
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    procedure: ProcedureSettings = field(default_factory=ProcedureSettings)
    adr_scheme: AdrSchemeSettings = field(default_factory=AdrSchemeSettings)
    staff_auth: StaffAuthSettings = field(default_factory=StaffAuthSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    letters: LetterSettings = field(default_factory=LetterSettings)
    staff: tuple[StaffMember, ...] = ()

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset({self.smtp.from_address.lower(), self.mailbox.username.lower()})

    def staff_member(self, email: str) -> StaffMember | None:
        """The listed staff member with address EMAIL, if any."""
        email = email.lower()
        return next((m for m in self.staff if m.email.lower() == email), None)

    def staff_with_role(self, role: str) -> list[StaffMember]:
        return [m for m in self.staff if m.role == role]


_SECTIONS: dict[str, type[Any]] = {
    "mailbox": MailboxSettings,
    "smtp": SmtpSettings,
    "database": DatabaseSettings,
    "procedure": ProcedureSettings,
    "adr_scheme": AdrSchemeSettings,
    "staff_auth": StaffAuthSettings,
    "notifications": NotificationSettings,
    "alerts": AlertSettings,
    "limits": LimitSettings,
    "letters": LetterSettings,
}


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """ "2d", "36h", "90m", "30s" -> a timedelta; ValueError otherwise."""
    found = _DURATION.match(text)
    if found is None:
        raise ValueError(f"not a duration like 2d, 36h or 90m: {text!r}")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


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
        if name not in _SECTIONS and name != "staff":
            raise ConfigError(name, f"unknown section (known: {', '.join(_SECTIONS)}, staff)")
    sections = {
        name: _section(name, cls, raw.get(name, {}), env) for name, cls in _SECTIONS.items()
    }
    staff = raw.get("staff", [])
    if not isinstance(staff, list):
        raise ConfigError("staff", "must be a list of [[staff]] tables")
    members = tuple(_section(f"staff[{n}]", StaffMember, t, {}) for n, t in enumerate(staff))
    settings = Settings(**sections, staff=members)
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
    if hint is bool:
        if from_env and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, not {value!r}")
        return value
    if hint == list[str]:
        if from_env and isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"must be a list of strings, not {value!r}")
        return list(value)
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
    try:
        settings.procedure.case_ref_format.format(year=2026, number=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            "procedure.case_ref_format", f"must use only {{year}} and {{number}} ({exc})"
        ) from None
    for key in ("opening_time", "closing_time", "update_cutoff"):
        try:
            time.fromisoformat(getattr(settings.procedure, key))
        except ValueError:
            raise ConfigError(f"procedure.{key}", "must be a time like 09:00") from None
    for day in settings.procedure.extra_closed_days:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise ConfigError("procedure.extra_closed_days", f"not a date: {day!r}") from None
    for n, member in enumerate(settings.staff):
        if "@" not in member.email:
            raise ConfigError(f"staff[{n}].email", f"not an email address: {member.email!r}")
    auth = settings.staff_auth
    if settings.staff and auth.require != "none" and not auth.trusted_authserv_ids:
        raise ConfigError(
            "staff_auth.trusted_authserv_ids",
            'empty: name the server whose Authentication-Results to trust, or set require = "none"',
        )
    try:
        parse_duration(settings.smtp.give_up_after)
    except ValueError as exc:
        raise ConfigError("smtp.give_up_after", str(exc)) from None
    for address in settings.alerts.to:
        if "@" not in address:
            raise ConfigError("alerts.to", f"not an email address: {address!r}")
    if settings.limits.max_message_bytes < 1024:
        raise ConfigError("limits.max_message_bytes", "must be at least 1024")
    own = settings.letters.own_templates
    if own is not None and not own.is_dir():
        raise ConfigError("letters.templates_dir", f"not a directory: {str(own)!r}")
    if not settings.database.url.partition("://")[1]:
        raise ConfigError("database.url", f"not a database URL: {settings.database.url!r}")
