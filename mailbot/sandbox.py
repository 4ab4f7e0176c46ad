"""Throwaway local mail servers for the demo and the tests: Dovecot IMAP and an aiosmtpd sink."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

DOVECOT_CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_location = maildir:{dir}/mail/%u
passdb {{
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
}}
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
    """A private Dovecot instance in a temp dir, with one user per name in USERS."""

    def __init__(self, users: dict[str, str]) -> None:
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
        conf = self.dir / "dovecot.conf"
        conf.write_text(DOVECOT_CONF.format(dir=self.dir, port=self.port, **ids))
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


@dataclass
class SinkHandler:
    """Keeps every message; can answer MAIL FROM with a chosen code, or call a hook first."""

    received: list[Envelope] = field(default_factory=list)
    refuse_with: str | None = None  # e.g. "451 4.3.0 try later" or "550 5.1.1 no such user"
    on_mail: Any = None  # called at MAIL FROM, before answering (e.g. to kill the client)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.on_mail is not None:
            self.on_mail()
        if self.refuse_with:
            return self.refuse_with
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Envelope(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 queued as mailbot-test"


class SmtpSink:
    """A real SMTP server (aiosmtpd) in a thread on 127.0.0.1."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
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
