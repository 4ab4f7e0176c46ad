"""Settings from config.toml, MAILBOT_<SECTION>_<KEY> variables and a .env file."""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import uuid
from collections.abc import Mapping
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from mailbot.store.connection import shown_url

Security = Literal["ssl", "starttls", "none"]
Auth = Literal["password", "oauth2"]


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """ "2d", "36h", "90m", "30s" -> a timedelta; ValueError otherwise."""
    found = _DURATION.match(text)
    if found is None:
        raise ValueError(f"not a duration like 2d, 36h or 90m: {text!r}")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def _address(text: str) -> str:
    if "@" not in text:
        raise ValueError(f"not an email address: {text!r}")
    return text


def _clock_time(text: str) -> str:
    try:
        time.fromisoformat(text)
    except ValueError:
        raise ValueError("must be a time like 09:00") from None
    return text


def _day(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date: {text!r}") from None
    return text


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _tenant_id(text: str) -> str:
    """A directory (tenant) id is a GUID; Exchange Online writes it in lower case."""
    if not text:
        return text
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValueError(f"not a tenant id (a GUID like 72f988bf-...): {text!r}") from None


def _comma_list(value: Any) -> Any:
    """An environment variable lists its items with commas: MAILBOT_ALERTS_TO=a@x,b@y."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


Address = Annotated[str, AfterValidator(_address)]
# a password, a client secret, a token: never shown (`mailbot check --settings` masks it)
Secret = Annotated[str, Field(repr=False)]
ClockTime = Annotated[str, AfterValidator(_clock_time)]
Port = Annotated[int, Field(ge=1, le=65535)]
Strings = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]


class _Section(BaseModel):
    # strict: a TOML value of the wrong type is an error (port = "993"); pydantic-settings
    # still reads the environment's strings as the type each key wants.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class MailboxSettings(_Section):
    """[mailbox]: the complaints IMAP mailbox."""

    host: str
    username: str
    password: Secret = ""  # needed with auth = "password"
    auth: Auth = "password"  # "oauth2": SASL XOAUTH2 with a token from [oauth2]
    port: Port = 993
    security: Security = "ssl"
    folder: str = "INBOX"
    processed_folder: str = "mailbot/processed"
    quarantine_folder: str = "mailbot/quarantine"
    held_folder: str = "Held"  # what the mail platform called spam or forged, until released
    poll_seconds: Annotated[int, Field(ge=1)] = 60
    batch_size: int = 100
    idle: bool = True  # wait in IMAP IDLE when the server offers it; polling stays the fallback

    @model_validator(mode="before")
    @classmethod
    def _password_given(cls, values: Any) -> Any:
        """password is required (it may be empty) unless auth = "oauth2"; reported after a
        missing host or username, as the keys come."""
        given = values.keys() if isinstance(values, dict) else {"password"}
        if (
            {"host", "username"} <= given
            and "password" not in given
            and values.get("auth") != "oauth2"
        ):
            raise ConfigError(
                "mailbox.password", "missing (set it in config.toml or MAILBOT_MAILBOX_PASSWORD)"
            )
        return values


class SmtpSettings(_Section):
    """[smtp]: where mailbot sends from."""

    host: str
    from_address: Address
    port: Port = 587
    security: Security = "starttls"
    username: str = ""  # empty: no AUTH
    password: Secret = ""
    auth: Auth = "password"  # "oauth2": SASL XOAUTH2 as username, with a token from [oauth2]
    from_name: str = ""  # empty: "[procedure] company_name complaints team"
    timeout_seconds: int = 30
    # a message the server keeps refusing this long is marked failed
    give_up_after: Annotated[str, AfterValidator(_duration)] = "2d"

    @property
    def give_up_delta(self) -> timedelta:
        return parse_duration(self.give_up_after)


PROVIDERS = ("microsoft", "google", "generic")
DEFAULT_SCOPES = {
    "microsoft": "https://outlook.office365.com/.default",
    "google": "https://mail.google.com/",
}


def _existing_file(path: str) -> str:
    if path and not Path(path).is_file():
        raise ValueError(f"not a file: {path!r}")
    return path


class OAuth2Settings(_Section):
    """[oauth2]: where the access tokens for auth = "oauth2" come from."""

    provider: str = ""
    tenant_id: str = ""  # microsoft: the directory (tenant) id
    token_url: str = ""  # generic: the token endpoint; set, it overrides a provider's
    client_id: str = ""
    client_secret: Secret = ""  # better: MAILBOT_OAUTH2_CLIENT_SECRET
    client_certificate: Annotated[str, AfterValidator(_existing_file)] = ""  # microsoft: a PEM
    scope: str = ""  # empty: the provider's (DEFAULT_SCOPES)
    refresh_token: Secret = ""  # set: the refresh-token grant; empty: client credentials
    service_account_file: Annotated[str, AfterValidator(_existing_file)] = ""  # google

    @field_validator("provider")
    @classmethod
    def _a_provider(cls, provider: str) -> str:
        if provider not in ("", *PROVIDERS):
            raise ValueError(f'must be "microsoft", "google" or "generic", not {provider!r}')
        return provider

    @property
    def scopes(self) -> str:
        return self.scope or DEFAULT_SCOPES.get(self.provider, "")

    def problem(self, needed_by: str) -> ConfigError | None:
        """What is missing for NEEDED_BY (e.g. 'mailbox.auth = "oauth2"'), if anything."""

        def missing(key: str, why: str) -> ConfigError:
            env = f"MAILBOT_OAUTH2_{key.upper()}"
            return ConfigError(f"oauth2.{key}", f"missing: {why} (set it in config.toml or {env})")

        if not self.provider:
            return missing("provider", f'{needed_by} needs "microsoft", "google" or "generic"')
        if self.provider == "generic" and not self.token_url:
            return missing("token_url", 'provider = "generic" needs the token endpoint')
        if self.provider == "microsoft" and not (self.tenant_id or self.token_url):
            return missing("tenant_id", "the directory (tenant) id of the Entra app")
        if self.client_certificate and self.provider != "microsoft":
            return ConfigError("oauth2.client_certificate", 'only for provider = "microsoft"')
        if self.service_account_file and self.provider != "google":
            return ConfigError("oauth2.service_account_file", 'only for provider = "google"')
        if self.provider == "google" and not (self.service_account_file or self.refresh_token):
            return missing(
                "service_account_file",
                "a service account with domain-wide delegation, or else a refresh_token",
            )
        if self.service_account_file:
            return None  # the file names the client and holds its key
        if not self.client_id:
            return missing("client_id", "the application (client) id")
        if self.client_secret and self.client_certificate:
            return ConfigError(
                "oauth2.client_secret", "give a client_certificate or a secret, not both"
            )
        public = self.provider == "generic" and self.refresh_token  # a client with no secret
        if not (self.client_secret or self.client_certificate or public):
            return missing("client_secret", "the client's secret")
        return None


class DatabaseSettings(_Section):
    """[database]: an SQLAlchemy URL."""

    url: str = "sqlite:///data/mailbot.db"

    @field_validator("url")
    @classmethod
    def _a_url(cls, url: str) -> str:
        if not url.partition("://")[1]:
            raise ValueError(f"not a database URL: {url!r}")
        return url


class ProcedureSettings(_Section):
    """[procedure]: the choices PROCEDURE.md leaves open."""

    timezone: str = "Europe/London"
    region: str = "GB-ENG"
    case_ref_format: str = "CMP-{year}-{number:06d}"
    opening_time: ClockTime = "09:00"
    closing_time: ClockTime = "17:30"
    adr_wait_weeks: int = 8
    company_name: str = "Claranet SOHO"
    code_url: str = ""  # the published complaints code, linked from the acknowledgement
    extra_closed_days: Annotated[Strings, AfterValidator(lambda days: [_day(d) for d in days])] = []
    update_cutoff: ClockTime = "16:00"
    auto_escalate_working_days: int = 10
    deadlock_decision_working_days: int = 1
    reopen_days: int = 28
    tick_seconds: int = 60
    deadlock_phrases: Strings = []  # added to the built-in ones
    acknowledge_out_of_hours: bool = True  # R2: false holds the acknowledgement to business time

    @field_validator("case_ref_format")
    @classmethod
    def _names_year_and_number(cls, text: str) -> str:
        try:
            text.format(year=2026, number=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"must use only {{year}} and {{number}} ({exc})") from None
        return text

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


class AdrSchemeSettings(_Section):
    """[adr_scheme]: the Ofcom-approved ADR scheme named in the code."""

    name: str = "Ombudsman Services"
    website: str = "www.ombudsman-services.org"
    phone: str = "0330 440 1614"
    email: str = "osenquiries@os-communications.org"
    address: str = "Ombudsman Services, PO Box 730, Warrington, WA4 6WU"
    referral_limit_months: int = 12
    remedy_days: Annotated[int, Field(ge=1)] = 28


class AlertSettings(_Section):
    """[alerts]: who hears about what needs an admin."""

    to: Annotated[Strings, AfterValidator(lambda to: [_address(a) for a in to])] = []


class LimitSettings(_Section):
    """[limits]: what keeps mailbot from flooding anyone or being flooded."""

    auto_replies_per_address_per_day: int = 5
    max_message_bytes: Annotated[int, Field(ge=1024)] = 25 * 1024 * 1024
    # more new cases than this from one sender in a day thread onto their latest case
    new_cases_per_sender_per_day: Annotated[int, Field(ge=1)] = 5


class SpamSettings(_Section):
    """[spam]: which of the mail platform's verdicts hold a message instead of answering it."""

    spamassassin: bool = True  # X-Spam-Flag: YES, X-Spam-Status: Yes
    rspamd: bool = True  # X-Spam: Yes, X-Spamd-Result: default: True, X-Rspamd-Action
    microsoft: bool = True  # X-MS-Exchange-Organization-SCL, X-Forefront-Antispam-Report
    scl_threshold: Annotated[int, Field(ge=1, le=9)] = 5  # Microsoft's SCL that counts as spam
    subject_tags: Strings = ["[SPAM]", "*****SPAM*****"]  # a filter's mark in the subject
    dmarc: bool = True  # a DMARC fail (p=quarantine/reject) our servers wrote ([staff_auth])


RoleName = Literal["agent", "team_leader", "manager", "dpo"]  # procedure.vocabulary.Role's values


class StaffSettings(_Section):
    """[[staff]]: someone who works the cases from their own mail client."""

    email: Address
    name: str
    role: RoleName
    phone: str = ""  # in their signature on the letters they sign


class StaffAuthSettings(_Section):
    """[staff_auth]: what proves a message really comes from staff."""

    trusted_authserv_ids: Strings = []
    require: Literal["dmarc", "dkim", "none"] = "dmarc"
    # Set: Exchange Online's own stamps of this tenant vouch for staff (mail/authentication.py).
    exchange_online_tenant_id: Annotated[str, AfterValidator(_tenant_id)] = ""


class NotificationSettings(_Section):
    """[notifications]: what mailbot tells staff."""

    confirm_staff_commands: bool = True


class LetterSettings(_Section):
    """[letters]: the operator's own wording of the letters."""

    templates_dir: str = ""  # their templates; any missing there is the packaged one

    @field_validator("templates_dir")
    @classmethod
    def _a_directory(cls, folder: str) -> str:
        if folder and not Path(folder).is_dir():
            raise ValueError(f"not a directory: {folder!r}")
        return folder

    @property
    def own_templates(self) -> Path | None:
        return Path(self.templates_dir) if self.templates_dir else None


class ReportSettings(_Section):
    """[reports]: what the complaints manager is sent."""

    weekly_digest: bool = False  # each Monday at opening time, last week's figures to managers
    chart_weeks: Annotated[int, Field(ge=1, le=52)] = 8  # weeks the digest's chart shows


class RetentionSettings(_Section):
    """[retention]: how long a closed case's personal data must be kept (mailbot erase/purge)."""

    # the ADR scheme's referral window: after resolution, or the last ADR or deadlock letter
    hold_months: Annotated[int, Field(ge=0)] = 12


class MetricsSettings(_Section):
    """[metrics]: Prometheus metrics over HTTP, for monitoring."""

    listen: str = ""  # "127.0.0.1:9464": serve /metrics there; empty: off

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, listen: str) -> str:
        host, colon, port = listen.rpartition(":")
        if listen and not (colon and host and port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f'must be "host:port", like "127.0.0.1:9464", not {listen!r}')
        return listen


class Settings(BaseSettings):
    """Every setting mailbot reads, checked at start-up."""

    # MAILBOT_SMTP_GIVE_UP_AFTER: the prefix, then the section, then the key whole (max split 1).
    model_config = SettingsConfigDict(
        env_prefix="MAILBOT_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
        strict=True,
    )

    mailbox: MailboxSettings
    smtp: SmtpSettings
    database: DatabaseSettings = DatabaseSettings()
    procedure: ProcedureSettings = ProcedureSettings()
    adr_scheme: AdrSchemeSettings = AdrSchemeSettings()
    staff_auth: StaffAuthSettings = StaffAuthSettings()
    notifications: NotificationSettings = NotificationSettings()
    alerts: AlertSettings = AlertSettings()
    limits: LimitSettings = LimitSettings()
    spam: SpamSettings = SpamSettings()
    letters: LetterSettings = LetterSettings()
    oauth2: OAuth2Settings = OAuth2Settings()
    reports: ReportSettings = ReportSettings()
    retention: RetentionSettings = RetentionSettings()
    metrics: MetricsSettings = MetricsSettings()
    staff: Annotated[tuple[StaffSettings, ...], Field(strict=False)] = ()  # TOML gives a list

    @model_validator(mode="before")
    @classmethod
    def _required_sections_as_tables(cls, values: Any) -> Any:
        """A missing [mailbox] is reported as its first missing key, mailbox.host."""
        return {"mailbox": {}, "smtp": {}, **values} if isinstance(values, dict) else values

    @model_validator(mode="after")
    def _staff_can_be_proved(self) -> Settings:
        auth = self.staff_auth
        proofs = auth.trusted_authserv_ids or auth.exchange_online_tenant_id
        if self.staff and auth.require != "none" and not proofs:
            raise ConfigError(
                "staff_auth.trusted_authserv_ids",
                "empty: name the server whose Authentication-Results to trust,"
                ' set exchange_online_tenant_id, or set require = "none"',
            )
        return self

    @model_validator(mode="after")
    def _logins_complete(self) -> Settings:
        if self.smtp.auth == "oauth2" and not self.smtp.username:
            raise ConfigError(
                "smtp.username", 'empty: auth = "oauth2" logs in as a user (the mailbox address)'
            )
        for section in ("mailbox", "smtp"):
            if getattr(self, section).auth == "oauth2":
                problem = self.oauth2.problem(f'{section}.auth = "oauth2"')
                if problem is not None:
                    raise problem
        return self

    @property
    def uses_oauth2(self) -> bool:
        return "oauth2" in (self.mailbox.auth, self.smtp.auth)

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset({self.smtp.from_address.lower(), self.mailbox.username.lower()})

    def staff_member(self, email: str) -> StaffSettings | None:
        """The listed staff member with address EMAIL, if any."""
        email = email.lower()
        return next((m for m in self.staff if m.email.lower() == email), None)

    def staff_with_role(self, role: str) -> list[StaffSettings]:
        return [m for m in self.staff if m.role == role]


_SECTIONS: dict[str, type[BaseModel]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)
}


class _Environment(EnvSettingsSource):
    """MAILBOT_* from the mapping given (os.environ, or a test's), never for [[staff]]."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive)

    def explode_env_vars(
        self, field_name: str, field: Any, env_vars: Mapping[str, str | None]
    ) -> dict[str, Any]:
        # MAILBOT_STAFF_AUTH_REQUIRE belongs to [staff_auth], not to a [[staff]] member.
        return (
            {} if field_name == "staff" else super().explode_env_vars(field_name, field, env_vars)
        )


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """--config, else $MAILBOT_CONFIG, else ./config.toml."""
    return Path(explicit or environ.get("MAILBOT_CONFIG") or "config.toml")


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read PATH, then let MAILBOT_<SECTION>_<KEY> (environment, then .env) override it."""
    env, origin = _variables(path, os.environ if environ is None else environ)
    _no_such_setting(origin)
    if not path.is_file() and not any(
        k.startswith("MAILBOT_") and k != "MAILBOT_CONFIG" for k in env
    ):
        raise ConfigError(str(path), "file not found (give --config or set MAILBOT_CONFIG)")
    try:
        toml = TomlConfigSettingsSource(Settings, toml_file=path)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML ({exc})") from None
    try:
        # the sources built here for this call, in order of precedence (mypy sees only fields)
        return Settings(_build_sources=((_Environment(env), toml), {}))  # type: ignore[call-arg]
    except ValidationError as exc:
        raise _config_error(exc.errors()[0], origin, path.name) from None


def _variables(path: Path, environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The variables in force (.env beside PATH, overridden by ENVIRON), and where each
    was set ("the environment" or ".env"), by its name in capitals."""
    env = {k: v for k, v in dotenv_values(path.parent / ".env").items() if v is not None}
    origin = dict.fromkeys((k.upper() for k in env), ".env")
    origin.update(dict.fromkeys((k.upper() for k in environ), "the environment"))
    env.update(environ)
    return env, origin


def in_force(settings: Settings, path: Path, environ: Mapping[str, str]) -> list[str]:
    """The settings as TOML, each value from a variable or left at its default saying so;
    secrets masked, and the database URL's password."""
    _, origin = _variables(path, environ)
    toml = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    lines = [f"# settings in force: {path}, the environment, {path.parent / '.env'}"]
    for section in _SECTIONS:
        values: BaseModel = getattr(settings, section)
        lines += ["", f"[{section}]"]
        for key, field in type(values).model_fields.items():
            value = getattr(values, key)
            if field.repr is False and value:
                value = "********"
            elif section == "database" and key == "url":
                value = shown_url(value)
            name = variable(section, key)
            where = "" if key in toml.get(section, {}) else "  # default"
            if name in origin:
                where = f"  # {name} in {origin[name]}"
            lines.append(f"{key} = {_toml(value)}{where}")
    for member in settings.staff:
        lines += ["", "[[staff]]"] + [
            f"{key} = {_toml(value)}" for key, value in member.model_dump().items()
        ]
    return lines


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def variable(section: str, key: str) -> str:
    """The variable that sets [SECTION] KEY: MAILBOT_SMTP_GIVE_UP_AFTER."""
    return f"MAILBOT_{section}_{key}".upper()


# read by mailbot, its tests and benchmarks, but no settings
NOT_SETTINGS = frozenset({"MAILBOT_CONFIG", "MAILBOT_CORPUS", "MAILBOT_TEST_ALL_DATABASES"})
VARIABLES = frozenset(
    variable(section, key) for section, cls in _SECTIONS.items() for key in cls.model_fields
)


def _no_such_setting(origin: Mapping[str, str]) -> None:
    """A MAILBOT_ variable that sets nothing is a typo: pydantic-settings would pass it over."""
    for name in sorted(origin):
        if name.startswith("MAILBOT_") and name not in VARIABLES | NOT_SETTINGS:
            close = difflib.get_close_matches(name, sorted(VARIABLES), n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(name, f"no such setting{hint}")


_PROBLEMS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list of strings",
    "model_type": "must be a table",
    "tuple_type": "must be a list of [[staff]] tables",
}


def _config_error(error: ErrorDetails, origin: Mapping[str, str], toml: str) -> ConfigError:
    """Pydantic's first error as one line: the key as written where its value came from (the
    variable for the environment or .env, the dotted key for config.toml), then the problem."""
    loc = error["loc"]
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]
    kind = error["type"]
    if kind == "missing":
        named = not any(isinstance(part, int) for part in loc)  # no variable for [[staff]]
        env = f" or MAILBOT_{key.upper()}".replace(".", "_") if named else ""
        return ConfigError(key, f"missing (set it in config.toml{env})")
    if kind == "extra_forbidden":
        return ConfigError(key, "unknown section" if len(loc) == 1 else "unknown key")
    name = variable(*map(str, loc[:2])) if len(loc) >= 2 else ""
    where = f"in {origin[name]}" if name in origin else f"in {toml}"
    if name in origin:
        key = name
    if kind == "value_error":
        problem = str(error.get("ctx", {}).get("error", error["msg"]))
        return ConfigError(key, f"{problem} ({where})")
    if kind == "literal_error":
        problem = f"must be one of {error.get('ctx', {}).get('expected')}"
    else:
        problem = _PROBLEMS.get(kind) or error["msg"][0].lower() + error["msg"][1:]
    return ConfigError(key, f"{problem}, not {error['input']!r} ({where})")
