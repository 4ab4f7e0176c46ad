"""Throwaway local servers for the demo and tests: Dovecot IMAP, an aiosmtpd sink, PostgreSQL."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, syntax

DOVECOT_CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{mechanisms}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_location = maildir:{dir}/mail/%u
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
{anvil}}}
"""


# Dovecot checks bearer tokens (XOAUTH2, OAUTHBEARER) by RFC 7662 introspection
# (tests refuse tokens on purpose: no delay after a refusal, and no growing penalty that
# holds 127.0.0.1's next logins, whose tokens may live only seconds, until they expire)
OAUTH2_PASSDB = """\
auth_failure_delay = 0
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/oauth2.conf.ext
}}
"""
NO_AUTH_PENALTY = """\
  unix_listener anvil-auth-penalty {
    mode = 0
  }
"""
OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def dovecot_binary() -> str:
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("dovecot is not installed: scripts/setup installs dovecot-imapd")
    return found


class Dovecot:
    """A private Dovecot instance in a temp dir, with one user per name in USERS; with an
    INTROSPECTION_URL it also takes OAuth2 bearer tokens that the URL says are live."""

    def __init__(self, users: dict[str, str], introspection_url: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-"))
        self.port = free_port()
        self.users = users
        root = os.geteuid() == 0
        self.dir.chmod(0o755)
        for sub in ("mail", "home", "run", "state"):
            (self.dir / sub).mkdir()
        (self.dir / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
        if root:
            shutil.chown(self.dir / "mail", "nobody", "nogroup")
            shutil.chown(self.dir / "home", "nobody", "nogroup")
            ids = {
                "uid": "nobody",
                "gid": "nogroup",
                "internal_user": "dovecot",
                "internal_group": "dovecot",
                "login_user": "dovenull",
            }
        else:
            import grp
            import pwd

            user = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            ids = {
                "uid": user,
                "gid": group,
                "internal_user": user,
                "internal_group": group,
                "login_user": user,
            }
        oauth2 = {"mechanisms": "", "oauth2_passdb": "", "anvil": ""}
        if introspection_url:
            (self.dir / "oauth2.conf.ext").write_text(OAUTH2_CONF.format(url=introspection_url))
            oauth2 = {
                "mechanisms": " xoauth2 oauthbearer",
                "oauth2_passdb": OAUTH2_PASSDB.format(dir=self.dir),
                "anvil": NO_AUTH_PENALTY,
            }
        conf = self.dir / "dovecot.conf"
        conf.write_text(DOVECOT_CONF.format(dir=self.dir, port=self.port, **ids, **oauth2))
        self.conf = conf

    def start(self) -> None:
        subprocess.run([dovecot_binary(), "-c", str(self.conf)], check=True)
        wait_for_port(self.port)

    def stop(self) -> None:
        pid_file = self.dir / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    smtputf8: bool = False  # sent with MAIL FROM ... SMTPUTF8 (RFC 6531)

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def text(self) -> str:
        """The plain-text body, as the recipient reads it."""
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if isinstance(body, EmailMessage) else ""


# An answer (or the end of one: "554 5.7.1 no (hang up)") that closes the connection, as a
# server going away mid-conversation, or one that hangs up after refusing, does.
HANG_UP = "(hang up)"

# A sink's answer at a stage of a letter: MAIL, RCPT, DATA (the command) or DOT (the end of
# the data), given the letter so far; None accepts it (250, or 354 to DATA).
Answer = Callable[[str, Envelope], str | None]


@dataclass
class SinkHandler:
    """Keeps every message; answers any stage of a letter as told (answer), or MAIL FROM with
    one code for every letter (refuse_with), or calls a hook at MAIL FROM first."""

    received: list[Envelope] = field(default_factory=list)
    refuse_with: str | None = None  # e.g. "451 4.3.0 try later" or "550 5.1.1 no such user"
    answer: Answer | None = None
    on_mail: Any = None  # called at MAIL FROM, before answering (e.g. to kill the client)
    pipelining: bool = True  # offer RFC 2920 PIPELINING in the EHLO answer
    # answer DATA 354 even after refusing the recipient (RFC 2920 3.1 lets a server), then
    # refuse the letter at its end
    data_after_refusal: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def told(self, stage: str, envelope: Any, recipient: str = "") -> str | None:
        """The answer set for STAGE of ENVELOPE (aiosmtpd's), or None to accept."""
        if self.answer is None:
            return None
        letter = Envelope(
            envelope.mail_from or "",
            [*envelope.rcpt_tos, *([recipient] if recipient else [])],
            bytes(envelope.content or b""),
        )
        return self.answer(stage, letter)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """PIPELINING (RFC 2920), as Postfix, Exchange Online and Gmail offer it: aiosmtpd
        reads commands sent together in order."""
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        if not self.pipelining:
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.on_mail is not None:
            self.on_mail()
        if self.refuse_with:
            return self.refuse_with
        envelope.mail_from = address
        refusal = self.told("MAIL", envelope)
        if refusal is not None:
            envelope.mail_from = None
            return refusal
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refusal = self.told("RCPT", envelope, address)
        if refusal is not None:
            if self.data_after_refusal:  # aiosmtpd answers DATA 354 only with a recipient
                envelope.rcpt_tos.append(address)
                envelope.refused = True
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if getattr(envelope, "refused", False):
            return "554 5.5.1 no valid recipients"
        refusal = self.told("DOT", envelope)
        if refusal is not None:
            return refusal
        with self.lock:
            self.received.append(
                Envelope(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.content),
                    bool(envelope.smtp_utf8),
                )
            )
        return "250 2.0.0 queued as mailbot-test"


# RFC 7662 introspection: a token -> {"active": bool, "username": ...}
Introspect = Callable[[str], dict[str, Any]]


@dataclass
class OAuth2SinkHandler(SinkHandler):
    """A sink that wants AUTH XOAUTH2 with a bearer token that INTROSPECT says is live for
    the user named; a refusal goes as Google's does: a 334 JSON challenge, then 535."""

    introspect: Introspect | None = None
    logins: list[str] = field(default_factory=list)  # the users logged in, in order

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        blob = args[1] if len(args) > 1 else await server.challenge_auth("", encode_to_b64=False)
        if not isinstance(blob, str | bytes):
            return AuthResult(success=False, handled=True)  # the client gave up ("*")
        text = base64.b64decode(blob).decode() if isinstance(blob, str) else blob.decode()
        fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        assert self.introspect is not None
        found = self.introspect(token)
        if found.get("active") and found.get("username") == user:
            with self.lock:
                self.logins.append(user)
            return AuthResult(success=True)
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(
            success=False,
            handled=False,
            message=f"535 5.7.8 Username and token not accepted: no live token for {user}",
        )


class _SinkServer(SMTP):
    """aiosmtpd's server, with the sink's answer to the DATA command itself (before 354),
    which aiosmtpd has no handler hook for, and its HANG_UP."""

    event_handler: SinkHandler

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        ready = self.envelope is not None and self.envelope.rcpt_tos and not arg
        refusal = self.event_handler.told("DATA", self.envelope) if ready else None
        if refusal is not None:
            await self.push(refusal)
            return
        await super().smtp_DATA(arg)

    async def push(self, status: AnyStr) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if not text.endswith(HANG_UP):
            await super().push(status)
            return
        said = text.removesuffix(HANG_UP).strip()
        if said:
            await super().push(said)
        if self.transport is not None:
            self.transport.close()


class _SinkController(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():  # aiosmtpd warns of AUTH without TLS: meant here
            warnings.simplefilter("ignore")
            return _SinkServer(self.handler, **self.SMTP_kwargs)


class SmtpSink:
    """A real SMTP server (aiosmtpd) in a thread on 127.0.0.1; SMTPUTF8: it offers RFC 6531."""

    def __init__(self, smtputf8: bool = False, introspect: Introspect | None = None) -> None:
        """With INTROSPECT, every client must log in with AUTH XOAUTH2 (OAuth2SinkHandler)."""
        self.handler = (
            SinkHandler() if introspect is None else OAuth2SinkHandler(introspect=introspect)
        )
        self.port = free_port()
        oauth2: dict[str, Any] = {}
        if introspect is not None:  # plain text on 127.0.0.1: AUTH without TLS
            oauth2 = {"auth_required": True, "auth_require_tls": False}
            oauth2["auth_exclude_mechanism"] = ["LOGIN", "PLAIN"]
        self.controller = _SinkController(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=smtputf8,
            **oauth2,
        )
        self.running = False

    @property
    def received(self) -> list[Envelope]:
        return self.handler.received

    def start(self) -> None:
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False


def postgres_bindir() -> Path:
    """The newest PostgreSQL server binaries: Debian's /usr/lib/postgresql/N/bin, else $PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)],
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL is not installed: scripts/setup installs Debian's postgresql"
        )
    return Path(initdb).parent


class Postgres:
    """A private PostgreSQL cluster in a temp dir on 127.0.0.1 and a free port.

    As root the server runs as the `postgres` user (it refuses to run as root). The server's
    time zone is deliberately not UTC, so that code storing local times shows up in tests.
    """

    USER = "mailbot"
    PASSWORD = "secret"

    def __init__(self, timezone: str = "America/New_York", auth: str = "scram-sha-256") -> None:
        self.bindir = postgres_bindir()
        self.as_user: str | None = None
        if os.geteuid() == 0:  # the server refuses to run as root
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "no `postgres` user to run PostgreSQL as: install Debian's postgresql"
                ) from None
            self.as_user = "postgres"
        self.dir = Path(tempfile.mkdtemp(prefix="mailbot-postgres-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.timezone = timezone
        self.auth = auth  # for 127.0.0.1: "trust" skips the password (and its cost)
        self._numbers = itertools.count(1)
        if self.as_user is not None:
            shutil.chown(self.dir, self.as_user, self.as_user)
        self.dir.chmod(0o700)

    def _run(self, *command: str) -> None:
        kwargs: dict[str, Any] = {}
        if self.as_user is not None:
            kwargs = {"user": self.as_user, "group": self.as_user, "extra_groups": []}
        done = subprocess.run(
            command, cwd=self.dir, capture_output=True, text=True, check=False, **kwargs
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )

    def start(self) -> None:
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.PASSWORD + "\n")
        if self.as_user is not None:
            shutil.chown(pwfile, self.as_user, self.as_user)
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data),
            "-U", self.USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            f"--auth-host={self.auth}",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )  # fmt: skip
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k {self.dir}",
                f"-c timezone={self.timezone}",
                "-c max_connections=300",
                "-c fsync=off",  # throwaway data: speed over durability
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.data),
            "-l", str(self.dir / "postgres.log"),
            "-o", options,
            "-w", "-t", "60",
            "start",
        )  # fmt: skip
        wait_for_port(self.port)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (mailbot_N unless NAME): its SQLAlchemy URL."""
        import psycopg

        name = name or f"mailbot_{next(self._numbers)}"
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.USER,
            password=self.PASSWORD,
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def sandbox_config(
    *,
    imap_port: int,
    user: str,
    password: str,
    smtp_port: int,
    database_url: str,
    poll_seconds: int = 1,
    batch_size: int = 100,
) -> str:
    """A config.toml for the sandbox servers, with one member of staff of each role."""
    return f"""\
[mailbox]
host = "127.0.0.1"
port = {imap_port}
security = "none"
username = "{user}"
password = "{password}"
poll_seconds = {poll_seconds}
batch_size = {batch_size}

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from_address = "complaints@provider.example"
from_name = "Provider Complaints"

[database]
url = "{database_url}"

[[staff]]
email = "tl@provider.example"
name = "Terry Leader"
role = "team_leader"

[[staff]]
email = "agent@provider.example"
name = "Ann Agent"
role = "agent"

[[staff]]
email = "boss@provider.example"
name = "Morgan Manager"
role = "manager"

[[staff]]
email = "dpo@provider.example"
name = "Dee Protection"
role = "dpo"

[staff_auth]
trusted_authserv_ids = ["mx.provider.example"]
require = "dmarc"
"""
