"""SMTP out: one connection per batch of the outbox, with the server's answers kept."""

from __future__ import annotations

import re
import smtplib
import ssl
from types import TracebackType

from mailbot.config import SmtpSettings
from mailbot.transport.oauth2 import TokenError, TokenRefused, TokenSource


class SmtpTemporaryError(Exception):
    """A 4xx answer or no connection: try again later."""


class SmtpConnectionLost(SmtpTemporaryError):
    """The connection failed mid-batch: the rest of the batch waits too."""


class SmtpPermanentError(Exception):
    """A 5xx answer: this message will never go."""


class SmtpCannotAddress(Exception):
    """The server cannot take this recipient (RFC 6531, no SMTPUTF8): the letter is held back."""


class SmtpTransport:
    """A connection to the submission server, opened on entry.

    A server that hangs up after refusing a letter (as some do after a 5xx, and a 421 says it
    will) is connected to again for the next letter: that letter is not lost with the link.
    """

    def __init__(self, settings: SmtpSettings, tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self.tokens = tokens  # with auth = "oauth2"
        self.client: smtplib.SMTP | None = None
        self.lost = ""  # why the connection died mid-letter: the letters after it wait

    def __enter__(self) -> SmtpTransport:
        self.client = self._connect()
        return self

    def _connect(self) -> smtplib.SMTP:
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
            if s.username and s.auth == "oauth2":
                self._oauth2_login(client)
            elif s.username:
                client.login(s.username, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            answer = _answer(exc.smtp_code, exc.smtp_error)
            what = (
                f" the OAuth2 token for {s.username} (a new one too)" if s.auth == "oauth2" else ""
            )
            raise SmtpPermanentError(f"login refused{what}: {answer}") from exc
        except TokenRefused as exc:
            raise SmtpPermanentError(f"no OAuth2 token for SMTP: {exc}") from exc
        except TokenError as exc:
            raise SmtpTemporaryError(f"no OAuth2 token for SMTP: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpTemporaryError(f"cannot connect to {s.host}:{s.port}: {exc}") from exc
        return client

    def _oauth2_login(self, client: smtplib.SMTP) -> None:
        """AUTH XOAUTH2; a refused token is renewed once (revoked, or a permission changed)."""
        assert self.tokens is not None, 'auth = "oauth2" needs a TokenSource'
        try:
            _xoauth2(client, self.settings.username, self.tokens.token())
        except smtplib.SMTPAuthenticationError:
            _xoauth2(client, self.settings.username, self.tokens.renew())

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
        """Send RAW; return the server's final answer, or raise by the answer's class.

        The answer that decides is the first refusal (to MAIL, RCPT or the DATA command) or
        the answer after the final dot: 2xx sent, 5xx SmtpPermanentError, anything else
        SmtpTemporaryError, each with the server's words. Only a connection that fails
        mid-conversation is SmtpConnectionLost.
        """
        if self.lost:  # the outbox stops at the first lost connection: this is a guard
            raise SmtpConnectionLost(f"not tried: {self.lost}")
        client = self._client()
        options = _mail_options(client, recipient)
        try:
            stage, code, text = _conversation(client, sender, recipient, raw, options)
        except (OSError, smtplib.SMTPException) as exc:  # SMTPServerDisconnected among them
            self.lost = f"connection lost: {exc}"
            raise SmtpConnectionLost(self.lost) from exc
        answer = _answer(code, text)
        if 200 <= code < 300:
            return answer
        self._reset(code)
        if 500 <= code < 600:
            raise SmtpPermanentError(f"{answer} (to {stage})")
        raise SmtpTemporaryError(f"{answer} (to {stage})")

    def _client(self) -> smtplib.SMTP:
        if self.client is None:  # the server hung up after refusing the letter before
            try:
                self.client = self._connect()
            except (SmtpTemporaryError, SmtpPermanentError) as exc:
                self.lost = f"connecting again: {exc}"
                raise SmtpConnectionLost(self.lost) from exc
        return self.client

    def _reset(self, code: int) -> None:
        """Forget the refused letter; a server that hung up is connected to again."""
        assert self.client is not None
        if code != 421:  # 421: the server is closing the channel
            try:
                self.client.rset()
                return
            except (OSError, smtplib.SMTPException):
                pass
        self.client.close()
        self.client = None


def _conversation(
    client: smtplib.SMTP, sender: str, recipient: str, raw: bytes, options: list[str]
) -> tuple[str, int, bytes | str]:
    """The stage and answer that decide the letter: the first refusal, or the final answer."""
    if client.has_extn("pipelining"):
        return _pipelined(client, sender, recipient, raw, options)
    code, text = client.mail(sender, options)
    if not 200 <= code < 300:
        return "MAIL", code, text
    code, text = client.rcpt(recipient)
    if not 200 <= code < 300:
        return "RCPT", code, text
    try:
        code, text = client.data(raw)
    except smtplib.SMTPDataError as exc:  # the answer to the DATA command itself was not 354
        return "DATA", exc.smtp_code, exc.smtp_error
    return "the end of data", code, text


def _pipelined(
    client: smtplib.SMTP, sender: str, recipient: str, raw: bytes, options: list[str]
) -> tuple[str, int, bytes | str]:
    """_conversation in two round trips, not four (RFC 2920, which every submission server
    we build for offers): MAIL, RCPT and DATA go in one write and their answers are read in
    order; the letter goes only after a 354."""
    given = "".join(f" {option}" for option in options)
    commands = (
        f"MAIL FROM:{smtplib.quoteaddr(sender)}{given}\r\n"
        f"RCPT TO:{smtplib.quoteaddr(recipient)}\r\nDATA\r\n"
    )
    client.send(commands.encode("utf-8" if "SMTPUTF8" in options else "ascii"))
    refusal: tuple[str, int, bytes | str] | None = None
    for stage in ("MAIL", "RCPT", "DATA"):
        try:
            code, text = client.getreply()
        except smtplib.SMTPServerDisconnected:
            if refusal is None:
                raise
            return refusal  # the server refused, then hung up: its refusal decides
        if stage == "DATA" and code == 354:
            if refusal is None:
                break
            client.send(b".\r\n")  # DATA taken after a refusal: end the empty letter at once
            client.getreply()
        elif refusal is None and not (stage != "DATA" and 200 <= code < 300):
            refusal = (stage, code, text)
    if refusal is not None:
        return refusal
    body = _LEADING_DOT.sub(b"..", raw)  # RFC 5321 4.5.2, as smtplib's data() does
    client.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    code, text = client.getreply()
    return "the end of data", code, text


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _xoauth2(client: smtplib.SMTP, username: str, token: str) -> None:
    """SASL XOAUTH2 as Microsoft and Google define it: the user and the bearer token at once."""

    def response(challenge: bytes | None = None) -> str:
        # a challenge after the token is the server's error (JSON): answer empty for its 535
        return "" if challenge is not None else f"user={username}\x01auth=Bearer {token}\x01\x01"

    client.auth("XOAUTH2", response)


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
