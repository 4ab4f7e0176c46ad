"""A small OAuth2 server for tests on 127.0.0.1: a token endpoint and RFC 7662 introspection."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523: Google's service accounts


@dataclass
class Client:
    """A registered client: its secret, the mailbox its tokens open, how long they live."""

    secret: str
    username: str
    lifetime: float = 3600.0
    refresh_token: str = ""
    refuse_first: int = 0  # the first N tokens issued are dead on arrival (as if revoked)
    public_key: str = ""  # a service account's (PEM): it signs its JWT grants


@dataclass
class Issued:
    token: str
    client_id: str
    username: str
    grant: str
    expires_at: float  # time.monotonic()
    revoked: bool = False

    @property
    def live(self) -> bool:
        return not self.revoked and time.monotonic() < self.expires_at


@dataclass
class OAuth2Server:
    """POST /token (client_credentials, refresh_token, a service account's JWT) and POST
    /introspect, in a thread."""

    clients: dict[str, Client] = field(default_factory=dict)
    issued: list[Issued] = field(default_factory=list)
    presented_dead: list[str] = field(default_factory=list)  # refused at introspection
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = server.answer(self.path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet in tests

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def register(self, client_id: str, client: Client) -> None:
        with self.lock:
            self.clients[client_id] = client

    def issued_to(self, client_id: str) -> list[Issued]:
        with self.lock:
            return [i for i in self.issued if i.client_id == client_id]

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == "/token":
            return self._token(form)
        if path == "/introspect":
            return 200, self.introspect(form.get("token", ""))
        return 404, {"error": "not_found"}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        if grant == JWT_BEARER:
            return self._service_account(form.get("assertion", ""))
        client_id = form.get("client_id", "")
        with self.lock:
            client = self.clients.get(client_id)
            if grant not in ("client_credentials", "refresh_token"):
                return 400, {"error": "unsupported_grant_type"}
            if client is None or (client.secret and form.get("client_secret") != client.secret):
                return 401, {
                    "error": "invalid_client",
                    "error_description": f"wrong client secret for {client_id}",
                }
            if grant == "refresh_token" and form.get("refresh_token") != client.refresh_token:
                return 400, {"error": "invalid_grant", "error_description": "unknown refresh token"}
            return self._issue(client_id, client, grant)

    def _service_account(self, assertion: str) -> tuple[int, dict[str, Any]]:
        """A JWT signed by a service account's key, naming the user it acts as (sub): Google's
        domain-wide delegation. The audience is Google's endpoint, whatever token_uri says."""
        claims = jwt.decode(assertion, options={"verify_signature": False})
        with self.lock:
            client = self.clients.get(str(claims.get("iss")))
            if client is None or not client.public_key:
                return 401, {"error": "invalid_client", "error_description": "no such account"}
            try:
                jwt.decode(
                    assertion,
                    client.public_key,
                    algorithms=["RS256"],
                    options={"verify_aud": False},
                )
            except jwt.InvalidTokenError as exc:
                return 400, {"error": "invalid_grant", "error_description": str(exc)}
            if claims.get("sub") != client.username:  # no delegation for that user
                return 401, {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens"
                    " using this method, or client not authorized for any of the scopes"
                    " requested.",
                }
            return self._issue(str(claims["iss"]), client, JWT_BEARER)

    def _issue(self, client_id: str, client: Client, grant: str) -> tuple[int, dict[str, Any]]:
        """A new token for CLIENT (the lock held)."""
        issued = Issued(
            secrets.token_urlsafe(24),
            client_id,
            client.username,
            grant,
            time.monotonic() + client.lifetime,
            revoked=client.refuse_first > 0,
        )
        client.refuse_first = max(0, client.refuse_first - 1)
        self.issued.append(issued)
        return 200, {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": client.lifetime,
        }

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: whether TOKEN is live, and for whom."""
        with self.lock:
            found = next((i for i in self.issued if i.token == token), None)
            if found is None or not found.live:
                self.presented_dead.append(token)
                return {"active": False}
        return {
            "active": True,
            "username": found.username,
            "client_id": found.client_id,
            "token_type": "Bearer",
        }
