"""OAuth2 logins (SASL XOAUTH2) to a real Dovecot and a real SMTP server, tokens from a real
token endpoint that both servers ask (RFC 7662) whether a token is live."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailbot.daemon import Outages
from sandbox import Dovecot, SmtpSink, sandbox_config
from sandbox.oauth2 import Client, Issued, OAuth2Server
from tests.conftest import PASSWORD, Mailbot
from tests.test_daemon_e2e import wait_until
from tests.test_intake_e2e import complaint
from tests.test_outages import daemon_thread

SECRET = "s3cret-of-the-desk"
_desks = itertools.count(1)


@pytest.fixture(scope="module")
def idp() -> Iterator[OAuth2Server]:
    server = OAuth2Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oauth2_dovecot(idp: OAuth2Server) -> Iterator[Dovecot]:
    # the tests put mail in with a password; mailbot logs in with tokens only
    server = Dovecot({f"desk{n}": PASSWORD for n in range(1, 41)}, idp.introspection_url)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def oauth2_sink(idp: OAuth2Server) -> Iterator[SmtpSink]:
    sink = SmtpSink(introspect=idp.introspect)
    sink.start()
    yield sink
    sink.stop()


@dataclass
class Desk:
    """A complaints desk whose mailbot logs in to IMAP and SMTP with OAuth2 tokens."""

    mailbot: Mailbot
    idp: OAuth2Server
    client_id: str

    def tokens(self) -> list[Issued]:
        """The tokens the token endpoint issued to this desk's mailbot, in order."""
        return self.idp.issued_to(self.client_id)

    def shown_dead(self) -> list[str]:
        """This desk's tokens that a server was shown when they were no longer live."""
        own = {i.token for i in self.tokens()}
        return [t for t in self.idp.presented_dead if t in own]

    def dovecot_log(self) -> str:
        return (self.mailbot.dovecot.dir / "dovecot.log").read_text()


MakeDesk = Callable[..., Desk]


@pytest.fixture
def make_desk(
    tmp_path: Path, idp: OAuth2Server, oauth2_dovecot: Dovecot, oauth2_sink: SmtpSink
) -> MakeDesk:
    def make(
        secret: str = SECRET,
        lifetime: float = 3600.0,
        oauth2: str = 'provider = "generic"',
        **client: object,
    ) -> Desk:
        n = next(_desks)
        user, client_id = f"desk{n}", f"desk-app-{n}"
        idp.register(client_id, Client(SECRET, str(client.pop("username", user)), lifetime))
        for key, value in client.items():
            setattr(idp.clients[client_id], key, value)
        text = sandbox_config(
            imap_port=oauth2_dovecot.port,
            user=user,
            password=PASSWORD,
            smtp_port=oauth2_sink.port,
            database_url=f"sqlite:///{tmp_path / 'mailbot.db'}",
        )
        text = text.replace(f'password = "{PASSWORD}"\n', 'auth = "oauth2"\n')
        text = text.replace("[database]", f'username = "{user}"\nauth = "oauth2"\n\n[database]')
        text += (
            f'\n[oauth2]\ntoken_url = "{idp.token_url}"\nclient_id = "{client_id}"\n'
            f'client_secret = "{secret}"\n{oauth2}\n'
        )
        config = tmp_path / "config.toml"
        config.write_text(text)
        mailbot = Mailbot(
            config, f"sqlite:///{tmp_path / 'mailbot.db'}", oauth2_dovecot, oauth2_sink, user
        )
        return Desk(mailbot, idp, client_id)

    return make


def test_the_desk_logs_in_to_imap_and_smtp_with_one_token_from_the_token_endpoint(
    make_desk: MakeDesk, capsys: pytest.CaptureFixture[str]
) -> None:
    desk = make_desk()
    desk.mailbot.append(complaint()[0])
    assert desk.mailbot("run", "--once") == 0
    assert desk.mailbot.customer_kinds() == ["acknowledgement"]
    assert f"user=<{desk.mailbot.user}>, method=XOAUTH2" in desk.dovecot_log()
    assert desk.mailbot.smtp.handler.logins == [desk.mailbot.user]  # type: ignore[attr-defined]
    assert len(desk.tokens()) == 1  # cached: IMAP and SMTP share it
    capsys.readouterr()
    assert desk.mailbot("check") == 0
    out = capsys.readouterr().out
    assert "OAuth2 ok" in out and "IMAP ok" in out and "SMTP ok" in out


@pytest.mark.parametrize("provider", ["generic", "google"])
def test_a_refresh_token_gets_the_desk_its_tokens(make_desk: MakeDesk, provider: str) -> None:
    # google: google-auth's own refresh-token code, against this token endpoint
    refresh = f'provider = "{provider}"\nrefresh_token = "rt-1"'
    desk = make_desk(oauth2=refresh, refresh_token="rt-1")
    desk.mailbot.append(complaint()[0])
    assert desk.mailbot("run", "--once") == 0
    assert desk.mailbot.customer_kinds() == ["acknowledgement"]
    assert [t.grant for t in desk.tokens()] == ["refresh_token"]


def service_account(path: Path, idp: OAuth2Server, acts_as: str) -> None:
    """A service account's JSON key, as Google's console gives it, that may act as ACTS_AS."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = f"mailbot-{next(_desks)}@desk.iam.gserviceaccount.com"
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    idp.register(email, Client("", acts_as, public_key=public.decode()))
    info = {
        "type": "service_account",
        "project_id": "desk",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",  # token_url overrides it
    }
    path.write_text(json.dumps(info))


@pytest.mark.parametrize("delegated", [True, False])
def test_a_google_service_account_acts_as_the_mailbox_with_domain_wide_delegation(
    make_desk: MakeDesk,
    idp: OAuth2Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    delegated: bool,
) -> None:
    key = tmp_path / "key.json"
    desk = make_desk(oauth2=f'provider = "google"\nservice_account_file = "{key}"')
    service_account(key, idp, desk.mailbot.user if delegated else "someone-else")
    capsys.readouterr()
    assert desk.mailbot("check") == (0 if delegated else 75)
    out = capsys.readouterr().out
    if delegated:
        assert "OAuth2 ok" in out and "IMAP ok" in out and "SMTP ok" in out
    else:
        assert "OAuth2 FAILED: the token endpoint" in out
        assert "unauthorized_client: Client is unauthorized to retrieve access tokens" in out


def test_a_wrong_client_secret_is_named_by_check_as_the_token_endpoints_refusal(
    make_desk: MakeDesk, capsys: pytest.CaptureFixture[str]
) -> None:
    desk = make_desk(secret="not-the-secret")
    capsys.readouterr()
    assert desk.mailbot("check") == 75
    out = capsys.readouterr().out
    refusal = (
        f"the token endpoint {desk.idp.token_url} refused client {desk.client_id}:"
        f" invalid_client: wrong client secret for {desk.client_id}"
    )
    assert f"OAuth2 FAILED: {refusal}" in out
    assert f"IMAP FAILED: no OAuth2 token for IMAP: {refusal}" in out
    assert f"SMTP FAILED: no OAuth2 token for SMTP: {refusal}" in out
    assert desk.tokens() == []


def test_a_token_the_mailbox_refuses_is_renewed_once_and_the_mail_is_answered(
    make_desk: MakeDesk,
) -> None:
    desk = make_desk(refuse_first=1)  # revoked as soon as issued: still unexpired for mailbot
    desk.mailbot.append(complaint()[0])
    assert desk.mailbot("run", "--once") == 0
    first, _renewed = desk.tokens()
    assert desk.shown_dead() == [first.token]
    assert desk.mailbot.customer_kinds() == ["acknowledgement"]  # SMTP took the second


def test_a_token_smtp_refuses_is_renewed_once_and_the_letter_goes(
    make_desk: MakeDesk, tmp_path: Path
) -> None:
    desk = make_desk(refuse_first=1)
    letter = tmp_path / "complaint.eml"
    letter.write_bytes(complaint()[0])
    assert desk.mailbot("ingest", str(letter)) == 0  # no IMAP: SMTP is the first to log in
    first, _renewed = desk.tokens()
    assert desk.shown_dead() == [first.token]
    assert desk.mailbot.customer_kinds() == ["acknowledgement"]


def test_a_mailbox_that_refuses_every_token_is_an_outage_in_the_servers_words(
    make_desk: MakeDesk, capsys: pytest.CaptureFixture[str]
) -> None:
    # the app's tokens open another mailbox (Exchange: no Add-MailboxPermission for this one)
    desk = make_desk(username="someone-else")
    user = desk.mailbot.user
    capsys.readouterr()
    assert desk.mailbot("check") == 75
    out = capsys.readouterr().out
    assert "OAuth2 ok" in out
    assert (
        f"IMAP FAILED: 127.0.0.1:{desk.mailbot.dovecot.port} refused the OAuth2 token for {user}"
        " (a new one too): [AUTHENTICATIONFAILED] Authentication failed." in out
    )
    assert (
        f"SMTP FAILED: login refused the OAuth2 token for {user} (a new one too): 535 5.7.8"
        f" Username and token not accepted: no live token for {user}" in out
    )
    # renewed once each, never in a loop: the first, IMAP's new one, SMTP's new one
    assert len(desk.tokens()) == 3


def test_mail_arriving_after_the_first_token_expired_is_still_fetched_and_answered(
    make_desk: MakeDesk,
) -> None:
    desk = make_desk(lifetime=2.0)  # real seconds: the servers judge expiry by their clock
    mailbot = desk.mailbot
    with daemon_thread(mailbot, Outages()):
        mailbot.append(complaint(sender="First <first@example.net>")[0])
        wait_until(lambda: len(mailbot.customer_mail()) == 1, 30, "the first acknowledgement")
        first = desk.tokens()[0]
        wait_until(lambda: time.monotonic() > first.expires_at, 10, "the first token to expire")
        mailbot.append(complaint(sender="Second <second@example.net>")[0])
        wait_until(lambda: len(mailbot.customer_mail()) == 2, 30, "the second acknowledgement")
    assert [e.rcpt_tos for e in mailbot.customer_mail()] == [
        ["first@example.net"],
        ["second@example.net"],
    ]
    assert len(desk.tokens()) >= 2
    # renewed before expiry: no server was ever shown a dead token
    assert desk.shown_dead() == []


def test_a_service_account_file_that_is_no_key_stops_start_up_naming_it(
    make_desk: MakeDesk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "key.json"
    key.write_text('{"type": "authorized_user"}')
    desk = make_desk(oauth2=f'provider = "google"\nservice_account_file = "{key}"')
    assert desk.mailbot("check") == 2
    assert "configuration error: oauth2.service_account_file: not a service account's JSON key" in (
        capsys.readouterr().err
    )
