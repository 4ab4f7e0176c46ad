"""IMAP in: new messages by UID with their INTERNALDATE, moved only after they are committed."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailbot.config import MailboxSettings
from mailbot.mail.fingerprint import content_sha256
from mailbot.transport.oauth2 import TokenError, TokenSource


class MailboxUnavailable(Exception):
    """The IMAP server cannot be reached or refuses us."""


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes
    internaldate: datetime


class Mailbox:
    """The complaints folder of one IMAP account, opened on entry."""

    def __init__(
        self, settings: MailboxSettings, timeout: float = 60.0, tokens: TokenSource | None = None
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.tokens = tokens  # with auth = "oauth2"
        self._client: IMAPClient | None = None
        self.uidvalidity = 0
        self.folders: dict[str, str] = {}

    @property
    def client(self) -> IMAPClient:
        assert self._client is not None, "use Mailbox as a context manager"
        return self._client

    def __enter__(self) -> Mailbox:
        s = self.settings
        try:
            client = self._logged_in()
        except (OSError, IMAPClientError) as exc:
            raise MailboxUnavailable(f"{s.host}:{s.port}: {exc}") from exc
        client.normalise_times = False  # keep INTERNALDATE's own offset: an aware datetime
        self._client = client
        try:
            # config names nest folders with "/"; servers differ ("." for Maildir++)
            delimiter = _delimiter(client)
            self.folders = {
                name: name.replace("/", delimiter)
                for name in (s.processed_folder, s.quarantine_folder, s.held_folder)
            }
            for folder in self.folders.values():
                if not client.folder_exists(folder):
                    client.create_folder(folder)
            selected = client.select_folder(s.folder)
        except (OSError, IMAPClientError) as exc:
            self.__exit__(None, None, None)
            raise MailboxUnavailable(f"{s.host}:{s.port} folder {s.folder}: {exc}") from exc
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        return self

    def _connect(self) -> IMAPClient:
        s = self.settings
        client = IMAPClient(
            s.host,
            port=s.port,
            ssl=s.security == "ssl",
            ssl_context=ssl.create_default_context() if s.security != "none" else None,
            timeout=self.timeout,
        )
        if s.security == "starttls":
            client.starttls(ssl.create_default_context())
        return client

    def _logged_in(self) -> IMAPClient:
        """A new connection, logged in. A refused OAuth2 token (revoked, or a permission just
        changed) is renewed once, on a new connection: servers may drop or slow the old one."""
        s = self.settings
        if s.auth == "password":
            client = self._connect()
            client.login(s.username, s.password)
            return client
        assert self.tokens is not None, 'auth = "oauth2" needs a TokenSource'
        try:
            try:
                return self._oauth2_login(self.tokens.token())
            except LoginError:
                return self._oauth2_login(self.tokens.renew())
        except LoginError as exc:
            raise MailboxUnavailable(
                f"{s.host}:{s.port} refused the OAuth2 token for {s.username}"
                f" (a new one too): {exc}"
            ) from exc
        except TokenError as exc:
            raise MailboxUnavailable(f"no OAuth2 token for IMAP: {exc}") from exc

    def _oauth2_login(self, token: str) -> IMAPClient:
        client = self._connect()
        try:
            client.oauth2_login(self.settings.username, token)
        except LoginError:
            client.shutdown()
            raise
        return client

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            try:
                self._client.logout()
            except (OSError, IMAPClientError):
                self._client.shutdown()
            self._client = None

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above LAST_UID, oldest first."""
        # "N:*" always matches the highest UID, even below N: filter it out
        found = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)

    def fetch(self, uids: Iterable[int]) -> list[Fetched]:
        """The raw bytes and INTERNALDATE of UIDS, without setting \\Seen."""
        wanted = list(uids)
        if not wanted:
            return []
        data = self.client.fetch(wanted, ["BODY.PEEK[]", "INTERNALDATE"])
        result = []
        for uid in wanted:
            item = data.get(uid)
            if item is None or item.get(b"BODY[]") is None:
                continue  # expunged meanwhile (another daemon moved it): nothing to do
            when = item[b"INTERNALDATE"]
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
            result.append(Fetched(uid, bytes(item[b"BODY[]"]), when))
        return result

    def move(self, uids: list[int], folder: str) -> None:
        """Move UIDS to FOLDER: MOVE where offered, else COPY + \\Deleted + expunge."""
        if not uids:
            return
        client = self.client
        folder = self.folders.get(folder, folder)
        if client.has_capability("MOVE"):
            client.move(uids, folder)
            return
        client.copy(uids, folder)
        client.delete_messages(uids)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()

    def take_back(self, folder: str, wanted: dict[str, str], to_folder: str) -> set[str]:
        """Move FOLDER's copies of WANTED (content key -> Message-ID) to TO_FOLDER: keys moved.

        A Message-ID finds the candidates; the content key (mail.fingerprint) picks the very copy.
        """
        client = self.client
        client.select_folder(self.folders.get(folder, folder))
        try:
            candidates: set[int] = set()
            for message_id in set(wanted.values()):
                if message_id.endswith("@mailbot.generated>"):  # it had none: look at them all
                    candidates |= set(client.search(["ALL"]))
                else:
                    candidates |= set(client.search(["HEADER", "Message-ID", message_id]))
            matched = {
                found.uid: key
                for found in self.fetch(sorted(candidates))
                if (key := content_sha256(found.raw)) in wanted
            }
            self.move(sorted(matched), to_folder)
        finally:
            client.select_folder(self.settings.folder)
        return set(matched.values())


class MailboxWatcher:
    """A second connection that waits in IMAP IDLE and says when new mail has arrived."""

    # RFC 2177: servers may drop an IDLE after 30 minutes; re-issue well inside that
    REISSUE_SECONDS = 9 * 60

    def __init__(
        self, settings: MailboxSettings, timeout: float = 60.0, tokens: TokenSource | None = None
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.tokens = tokens
        self._client: IMAPClient | None = None
        self._since = 0.0

    def start(self) -> bool:
        """Connect and start IDLE; False if the server does not offer IDLE."""
        mailbox = Mailbox(self.settings, self.timeout, self.tokens)
        mailbox.__enter__()
        client = mailbox.client
        if not client.has_capability("IDLE"):
            mailbox.__exit__(None, None, None)
            return False
        client.select_folder(self.settings.folder, readonly=True)
        self._client = client
        client.idle()
        self._since = time.monotonic()
        return True

    def wait(self, timeout: float) -> bool:
        """Wait up to TIMEOUT seconds; True if the server announced new mail."""
        assert self._client is not None, "start() first"
        responses = self._client.idle_check(timeout=timeout)
        if time.monotonic() - self._since > self.REISSUE_SECONDS:
            self._client.idle_done()
            self._client.idle()
            self._since = time.monotonic()
        return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.idle_done()
            client.logout()
        except (OSError, IMAPClientError):
            client.shutdown()


def _delimiter(client: IMAPClient) -> str:
    """The server's hierarchy delimiter (LIST "" "")."""
    listed = client.list_folders(directory="", pattern="")
    if listed and listed[0][1]:
        delimiter = listed[0][1]
        return delimiter.decode() if isinstance(delimiter, bytes) else str(delimiter)
    return "/"
