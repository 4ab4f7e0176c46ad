"""SMTP out: one connection per batch of the outbox, with the server's answers kept."""

from __future__ import annotations

import smtplib
import ssl
from types import TracebackType

from mailbot.config import SmtpSettings


class SmtpTemporaryError(Exception):
    """A 4xx answer or no connection: try again later."""


class SmtpConnectionLost(SmtpTemporaryError):
    """The connection failed mid-batch: the rest of the batch waits too."""


class SmtpPermanentError(Exception):
    """A 5xx answer: this message will never go."""


class SmtpCannotAddress(Exception):
    """The server cannot take this recipient (RFC 6531, no SMTPUTF8): the letter is held back."""


class SmtpTransport:
    """A connection to the submission server, opened on entry."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        s = self.settings
        try:
            if s.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_seconds, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
                if s.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
            client.ehlo_or_helo_if_needed()
            if s.username:
                client.login(s.username, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            answer = _answer(exc.smtp_code, exc.smtp_error)
            raise SmtpPermanentError(f"login refused: {answer}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpTemporaryError(f"cannot connect to {s.host}:{s.port}: {exc}") from exc
        self.client = client
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None

    def send(self, sender: str, recipient: str, raw: bytes) -> str:
        """Send RAW; return the server's final answer, or raise by the answer's class."""
        assert self.client is not None, "use SmtpTransport as a context manager"
        client = self.client
        options = _mail_options(client, recipient)
        try:
            for command, arguments in (("mail", (sender, options)), ("rcpt", (recipient,))):
                code, text = getattr(client, command)(*arguments)
                _check(code, text, client)
            code, text = client.data(raw)
            _check(code, text, client)
        except smtplib.SMTPServerDisconnected as exc:
            raise SmtpConnectionLost(f"connection lost: {exc}") from exc
        except OSError as exc:
            raise SmtpConnectionLost(f"connection error: {exc}") from exc
        return _answer(code, text)


def _mail_options(client: smtplib.SMTP, recipient: str) -> list[str]:
    """SMTPUTF8 for a non-ASCII address, if the server offers it (its EHLO says so)."""
    if recipient.isascii():
        return []
    if not client.has_extn("smtputf8"):
        raise SmtpCannotAddress(
            f"{recipient} is not an ASCII address and the mail server does not offer SMTPUTF8"
        )
    return ["SMTPUTF8"]


def _answer(code: int, text: bytes | str) -> str:
    return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"


def _check(code: int, text: bytes, client: smtplib.SMTP) -> None:
    if 200 <= code < 400:
        return
    client.rset()
    if 400 <= code < 500 or code < 0:
        raise SmtpTemporaryError(_answer(code, text))
    raise SmtpPermanentError(_answer(code, text))
