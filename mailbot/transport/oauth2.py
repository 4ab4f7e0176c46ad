"""OAuth2 access tokens for IMAP and SMTP: got from the provider, cached, renewed before expiry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from mailbot.config import ConfigError, OAuth2Settings

MICROSOFT_LOGIN = "https://login.microsoftonline.com"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"


class TokenError(Exception):
    """No access token: the token endpoint cannot be reached."""


class TokenRefused(TokenError):
    """The token endpoint refused the client; the message has its error and description."""


@dataclass(frozen=True)
class Grant:
    access_token: str
    expires_in: float  # seconds from when it was asked for


Fetch = Callable[[], Grant]


class TokenSource:
    """One access token at a time, shared by every IMAP and SMTP connection.

    token() hands out the cached one until a margin before it expires, so a new connection
    never logs in with an expired token; renew() gets a new one after a server refused it.
    """

    MARGIN = 60.0  # seconds; a quarter of the lifetime for tokens that live less than 4 minutes

    def __init__(
        self, fetch: Fetch, endpoint: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self.endpoint = endpoint  # where tokens come from, for the admin's messages
        self._clock = clock
        self._token = ""
        self._renew_at = 0.0
        self._lock = threading.Lock()  # the IDLE watcher and the poll may ask at once

    def token(self) -> str:
        with self._lock:
            if not self._token or self._clock() >= self._renew_at:
                self._get()
            return self._token

    def renew(self) -> str:
        with self._lock:
            self._get()
            return self._token

    def _get(self) -> None:
        asked = self._clock()
        grant = self._fetch()
        self._token = grant.access_token
        self._renew_at = asked + grant.expires_in - min(self.MARGIN, grant.expires_in / 4)


def token_source(settings: OAuth2Settings, username: str) -> TokenSource:
    """The provider's way of getting tokens; USERNAME is the mailbox a Google service account
    acts as. msal and google-auth are imported only for their provider, and no token is asked
    for before a connection needs one. A key file that cannot be read is a ConfigError."""
    if settings.provider == "microsoft":
        return TokenSource(_microsoft(settings), settings.token_url or _authority(settings))
    if settings.provider == "google":
        return TokenSource(_google(settings, username), settings.token_url or GOOGLE_TOKEN_URL)
    return TokenSource(_generic(settings), settings.token_url)


def _generic(s: OAuth2Settings) -> Fetch:
    """RFC 6749: the client-credentials grant, or the refresh-token grant, POSTed to token_url."""
    latest = {"refresh_token": s.refresh_token}  # a server may hand out a new one each time

    def fetch() -> Grant:
        form = {"client_id": s.client_id, "scope": s.scopes}
        if s.client_secret:
            form["client_secret"] = s.client_secret
        if latest["refresh_token"]:
            form |= {"grant_type": "refresh_token", "refresh_token": latest["refresh_token"]}
        else:
            form["grant_type"] = "client_credentials"
        body = _post(s.token_url, {k: v for k, v in form.items() if v}, s.client_id)
        latest["refresh_token"] = str(body.get("refresh_token") or latest["refresh_token"])
        return _grant(body, s.token_url, s.client_id)

    return fetch


def _post(url: str, form: dict[str, str], client_id: str) -> dict[str, Any]:
    request = Request(
        url,
        data=urlencode(form).encode(),
        headers={"Accept": "application/json"},  # urllib adds the form's Content-Type
    )
    try:
        with urlopen(request, timeout=30) as response:
            return _json(response.read())
    except HTTPError as exc:
        answer = _json(exc.read())
        raise TokenRefused(
            f"the token endpoint {url} refused client {client_id}: "
            f"{_words(answer) or f'HTTP {exc.code} {exc.reason}'}"
        ) from exc
    except (URLError, OSError) as exc:
        raise TokenError(f"the token endpoint {url} cannot be reached: {exc}") from exc


def _json(raw: bytes) -> dict[str, Any]:
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _words(answer: dict[str, Any]) -> str:
    """RFC 6749 5.2: an error code, and what a human should read."""
    return ": ".join(str(answer[k]) for k in ("error", "error_description") if answer.get(k))


def _grant(answer: dict[str, Any], url: str, client_id: str) -> Grant:
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:  # msal hands on the endpoint's refusal so
        what = "refused client" if answer.get("error") else "gave no access token to"
        raise TokenRefused(
            f"the token endpoint {url} {what} {client_id}: {_words(answer) or 'no access_token'}"
        )
    try:
        expires_in = float(answer.get("expires_in", ""))
    except (TypeError, ValueError):
        # no lifetime given (RFC 6749 leaves it optional): an hour, as the big providers give
        expires_in = 3600.0
    return Grant(token, expires_in)


def _authority(s: OAuth2Settings) -> str:
    """msal's authority: the tenant's, or the one a token_url of .../oauth2/v2.0/token names."""
    if s.token_url:
        return s.token_url.split("/oauth2/")[0]
    return f"{MICROSOFT_LOGIN}/{s.tenant_id}"


def _microsoft(s: OAuth2Settings) -> Fetch:
    """Entra ID through msal: the client-credentials grant with a secret or a certificate (for
    IMAP.AccessAsApp and SMTP.SendAsApp), or a user's refresh token."""
    import msal  # only when configured: its import costs

    credential: str | dict[str, str] = s.client_secret
    if s.client_certificate:
        try:
            pem = Path(s.client_certificate).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("oauth2.client_certificate", f"cannot be read: {exc}") from None
        begin = pem.find("-----BEGIN CERTIFICATE-----")
        # msal works out the certificate's SHA-256 thumbprint from it
        credential = {"private_key": pem, "public_certificate": pem[begin:]}
    authority = _authority(s)
    apps: list[Any] = []  # made at the first token: msal asks the authority for its metadata

    def fetch() -> Grant:
        try:
            if not apps:
                apps.append(
                    msal.ConfidentialClientApplication(
                        s.client_id, client_credential=credential, authority=authority
                    )
                )
            app = apps[0]
            if s.refresh_token:
                answer = app.acquire_token_by_refresh_token(s.refresh_token, scopes=[s.scopes])
            else:
                app.remove_tokens_for_client()  # TokenSource caches; msal's cache would
                answer = app.acquire_token_for_client(scopes=[s.scopes])  # hand back a refused one
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors; msal's, ValueErrors
            raise TokenError(f"the token endpoint {authority} cannot be reached: {exc}") from exc
        return _grant(answer, authority, s.client_id)

    return fetch


def _google(s: OAuth2Settings, username: str) -> Fetch:
    """Google through google-auth: a service account acting as USERNAME (domain-wide
    delegation), or a user's refresh token."""
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.credentials
    import google.oauth2.service_account

    url = s.token_url or GOOGLE_TOKEN_URL
    credentials: Any
    if s.service_account_file:
        try:
            info = json.loads(Path(s.service_account_file).read_text())
            if s.token_url:
                info["token_uri"] = s.token_url
            account = google.oauth2.service_account.Credentials
            credentials = account.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[s.scopes]
            ).with_subject(username)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            problem = f"not a service account's JSON key: {exc}"
            raise ConfigError("oauth2.service_account_file", problem) from None
        client = str(info.get("client_email", "the service account"))
    else:
        credentials = google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
            None,
            refresh_token=s.refresh_token,
            token_uri=url,
            client_id=s.client_id,
            client_secret=s.client_secret,
            scopes=[s.scopes],
        )
        client = s.client_id
    transport = google.auth.transport.requests.Request()

    def fetch() -> Grant:
        try:
            credentials.refresh(transport)
        except google.auth.exceptions.RefreshError as exc:
            words = exc.args[0] if exc.args else exc  # (the rest is the answer's JSON again)
            raise TokenRefused(f"the token endpoint {url} refused {client}: {words}") from exc
        except google.auth.exceptions.TransportError as exc:
            raise TokenError(f"the token endpoint {url} cannot be reached: {exc}") from exc
        expiry = credentials.expiry  # naive UTC, google-auth's way
        left = (expiry.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() if expiry else 3600
        return Grant(str(credentials.token), left)

    return fetch
