"""SMTP out: one connection per batch of the outbox, letters pipelined, the answers kept."""

from __future__ import annotations

import re
import smtplib
import ssl
from collections import deque
from dataclasses import dataclass
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


# the answer to a letter: the server's reply once it took it, or the error that refused it
Answer = str | SmtpTemporaryError | SmtpPermanentError | SmtpCannotAddress


class SmtpTransport:
    """A connection to the submission server, opened on entry, that letters go through as a
    pipeline: the outbox queues a letter's envelope (MAIL, RCPT, DATA), and after its 354 its
    content; answer() reads the answers owed, oldest first. Where the server offers
    PIPELINING (RFC 2920), what is queued goes in one write: a letter's content and final dot
    with the next letter's envelope, one round trip a letter. Without it, one command at a
    time.

    A server that hangs up after refusing a letter (as some do after a 5xx, and a 421 says it
    will) is connected to again for the next letter: that letter is not lost with the link.
    """

    def __init__(self, settings: SmtpSettings, tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self.tokens = tokens  # with auth = "oauth2"
        self.client: smtplib.SMTP | None = None
        self.lost = ""  # why the connection died mid-letter: the letters after it wait
        self.unread: deque[_Envelope | _Content] = deque()  # queued, answers not read yet
        self.refused = False  # the last answer read refused a letter: a hang-up may follow

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
            if kind is not None:  # a letter may be open mid-DATA: QUIT would be its content
                self.client.close()
                self.client = None
                return
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None

    def envelope(self, sender: str, recipient: str) -> None:
        """Queue a letter's MAIL, RCPT and DATA commands (SmtpCannotAddress: nothing queued)."""
        if self.lost:  # the outbox stops at the first lost connection: this is a guard
            raise SmtpConnectionLost(f"not tried: {self.lost}")
        options = _mail_options(self._client(), recipient)
        self.unread.append(_Envelope(sender, recipient, options))

    def content(self, raw: bytes) -> None:
        """Queue the content and final dot of the letter whose DATA was answered 354."""
        body = _LEADING_DOT.sub(b"..", raw)  # RFC 5321 4.5.2, as smtplib's data() does
        self.unread.append(_Content(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"))

    def answer(self) -> str:
        """Read the answer owed to the oldest thing queued, after writing what is queued: 354
        to an envelope's DATA, or the final answer to a content (2xx); raise by its class.

        A letter's answer that decides is the first refusal (to MAIL, RCPT or the DATA
        command) or the answer after the final dot: 5xx SmtpPermanentError, anything else
        SmtpTemporaryError, each with the server's words. Only a connection that fails
        mid-conversation is SmtpConnectionLost: what is still queued is then not tried.
        """
        if self.lost:
            raise SmtpConnectionLost(f"not tried: {self.lost}")
        item = self.unread.popleft()
        try:
            stage, code, text = self._exchange(item)
        except (OSError, smtplib.SMTPException) as exc:  # SMTPServerDisconnected among them
            self.lost = f"connection lost: {exc}"
            self.unread.clear()
            raise SmtpConnectionLost(self.lost) from exc
        answer = _answer(code, text)
        taken = code == 354 if isinstance(item, _Envelope) else 200 <= code < 300
        self.refused = not taken
        if taken:
            return answer
        # an envelope written behind this final dot starts a new transaction: no RSET then
        if not any(queued.written for queued in self.unread):
            self._reset(code)
        if 500 <= code < 600:
            raise SmtpPermanentError(f"{answer} (to {stage})")
        raise SmtpTemporaryError(f"{answer} (to {stage})")

    def _exchange(self, item: _Envelope | _Content) -> tuple[str, int, bytes | str]:
        """ITEM's stage and answer: under PIPELINING what is queued goes in one write first."""
        client = self._client()
        if not client.has_extn("pipelining"):
            return _one_by_one(client, item)
        unwritten = [queued for queued in (item, *self.unread) if not queued.written]
        if unwritten:
            client.send(b"".join(queued.wire() for queued in unwritten))
            for queued in unwritten:
                queued.written = True
        if isinstance(item, _Content):
            code, text = client.getreply()
            return "the end of data", code, text
        answers = _envelope_answers(client, hung_up=self.refused)
        if answers is None:  # the server hung up after refusing the letter before, this
            # envelope unanswered (and no content went with it): again, on a new connection
            self.client, self.refused, item.written = None, False, False
            return self._exchange(item)
        return answers

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


@dataclass
class _Envelope:
    """A letter's MAIL, RCPT and DATA commands, queued; WRITTEN once they went to the server."""

    sender: str
    recipient: str
    options: list[str]
    written: bool = False

    def wire(self) -> bytes:
        given = "".join(f" {option}" for option in self.options)
        commands = (
            f"MAIL FROM:{smtplib.quoteaddr(self.sender)}{given}\r\n"
            f"RCPT TO:{smtplib.quoteaddr(self.recipient)}\r\nDATA\r\n"
        )
        return commands.encode("utf-8" if "SMTPUTF8" in self.options else "ascii")


@dataclass
class _Content:
    """A letter's content, dots doubled, and its final dot, queued after a 354."""

    data: bytes
    written: bool = False

    def wire(self) -> bytes:
        return self.data


def _one_by_one(client: smtplib.SMTP, item: _Envelope | _Content) -> tuple[str, int, bytes | str]:
    """ITEM's stage and answer without PIPELINING: each command waits for its answer."""
    if isinstance(item, _Content):
        client.send(item.data)
        code, text = client.getreply()
        return "the end of data", code, text
    code, text = client.mail(item.sender, item.options)
    if not 200 <= code < 300:
        return "MAIL", code, text
    code, text = client.rcpt(item.recipient)
    if not 200 <= code < 300:
        return "RCPT", code, text
    code, text = client.docmd("DATA")
    return "DATA", code, text


def _envelope_answers(client: smtplib.SMTP, hung_up: bool) -> tuple[str, int, bytes | str] | None:
    """The answers to a pipelined MAIL, RCPT and DATA, read in order (RFC 2920): the first
    refusal, or DATA's 354. None if the connection was closed before the first of them and
    HUNG_UP (the server refused the letter before, as a server that hangs up then does)."""
    refusal: tuple[str, int, bytes | str] | None = None
    for stage in ("MAIL", "RCPT", "DATA"):
        try:
            code, text = client.getreply()
        except smtplib.SMTPServerDisconnected:
            if stage == "MAIL" and hung_up:
                return None
            if refusal is None:
                raise
            return refusal  # the server refused, then hung up: its refusal decides
        if stage == "DATA" and code == 354:
            if refusal is None:
                return stage, code, text
            client.send(b".\r\n")  # DATA taken after a refusal: end the empty letter at once
            client.getreply()
        elif refusal is None and not (stage != "DATA" and 200 <= code < 300):
            refusal = (stage, code, text)
    assert refusal is not None  # DATA answered other than 354 is one
    return refusal


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
