"""Reading a message: all mailbot learns from its bytes alone, done ahead in a helper process."""

from __future__ import annotations

import logging
import pickle
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass, field

from mailbot.mail.bounce import BounceReport, read_bounce
from mailbot.mail.classify import Classification, Sender, classify
from mailbot.mail.digest import content_digest
from mailbot.mail.parse import ParsedMessage, parse_message_tree
from mailbot.mail.trim import trim_reply
from mailbot.procedure.deadlock import deadlock_request
from mailbot.procedure.details import Detail, find_details

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reader:
    """What reading needs from the settings: plain values, so a helper process gets a copy."""

    own_addresses: frozenset[str]
    deadlock_phrases: tuple[str, ...]


@dataclass
class Reading:
    """One message read: parsed and classified; the procedure's questions of its text are
    answered when first asked, or ahead of time by the helper (answer_ahead)."""

    parsed: ParsedMessage
    verdict: Classification
    bounce: BounceReport | None  # read only when the verdict is a bounce
    reader: Reader
    _new_text: str | None = None
    _details: dict[tuple[str, str], frozenset[Detail]] = field(default_factory=dict)
    _deadlock: dict[str, str | None] = field(default_factory=dict)

    @property
    def new_text(self) -> str:
        """The new part of the text: quoted history and signature trimmed."""
        if self._new_text is None:
            self._new_text = trim_reply(self.parsed.text)
        return self._new_text

    def details(self, name: str, text: str) -> frozenset[Detail]:
        """find_details(NAME, TEXT), worked out once."""
        if (name, text) not in self._details:
            self._details[name, text] = find_details(name, text)
        return self._details[name, text]

    def deadlock_words(self, text: str) -> str | None:
        """deadlock_request(TEXT) with the configured phrases, worked out once."""
        if text not in self._deadlock:
            self._deadlock[text] = deadlock_request(text, self.reader.deadlock_phrases)
        return self._deadlock[text]

    def answer_ahead(self) -> Reading:
        """Answer what the intake asks of a person's message: for a complaint, the details
        and deadlock words of the whole text; for a reply, the deadlock words of its new part."""
        parsed = self.parsed
        if self.verdict.is_machine or parsed.sender is None:
            return self
        customer = parsed.reply_to[0] if parsed.reply_to else parsed.sender
        self.details(parsed.sender.name or customer.name, parsed.text)
        self.deadlock_words(parsed.text)
        self.deadlock_words(self.new_text)
        return self


def read(raw: bytes, reader: Reader, digest: str | None = None) -> Reading:
    """Read RAW; parse_message never raises, and neither does anything else here on bad mail.

    DIGEST (mail.digest.content_digest of RAW) names a message that has no Message-ID.
    """
    parsed, tree = parse_message_tree(raw, digest or content_digest(raw))
    verdict = classify(parsed, reader.own_addresses)
    bounce = read_bounce(raw, tree) if verdict.sender is Sender.BOUNCE else None
    return Reading(parsed, verdict, bounce, reader)


def read_batch(raws: Sequence[bytes | None], reader: Reader) -> list[Reading | None]:
    """Read each message; None for a message skipped (too large) or one that failed."""
    readings: list[Reading | None] = []
    for raw in raws:
        try:
            readings.append(None if raw is None else read(raw, reader).answer_ahead())
        except Exception:  # read again in the main process, where a failure is quarantined
            readings.append(None)
    return readings


class Readers:
    """A helper process reading fetched batches while the main process works the database.

    It uses the second core: parsing is about half of the work per message. It is a plain
    child process talking pickles over its stdin and stdout, so it needs no semaphores (and
    no resource tracker) and ends by itself when the daemon goes, even by SIGKILL: its stdin
    closes. If it dies, the batch is read in the main process and a new helper starts later.
    """

    def __init__(self, reader: Reader, max_bytes: int) -> None:
        self.reader = reader
        self.max_bytes = max_bytes
        self._helper: subprocess.Popen[bytes] | None = None
        self._waiting: deque[Future[list[Reading | None]]] = deque()
        self._lock = threading.Lock()

    def submit(self, raws: Sequence[bytes]) -> Future[list[Reading | None]] | None:
        """Start reading RAWS in the helper; None if it cannot take them."""
        work = [raw if len(raw) <= self.max_bytes else None for raw in raws]
        future: Future[list[Reading | None]] = Future()
        try:
            helper = self._started()
            assert helper.stdin is not None
            with self._lock:
                self._waiting.append(future)
            pickle.dump((work, self.reader), helper.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            helper.stdin.flush()
        except OSError as exc:
            self._failed(exc)
            return None
        return future

    def result(
        self, future: Future[list[Reading | None]] | None, count: int
    ) -> list[Reading | None]:
        """The readings of a submitted batch; all None (read in-process) if the helper died."""
        if future is not None:
            try:
                readings = future.result()
                if len(readings) == count:
                    return readings
            except HelperGone as exc:
                self._failed(exc)
        return [None] * count

    def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is None:
            return
        if helper.stdin is not None:
            with suppress(OSError):
                helper.stdin.close()  # the helper's signal to end
        try:
            helper.wait(timeout=10)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._helper is None or self._helper.poll() is not None:
            self._helper = subprocess.Popen(
                [sys.executable, "-m", "mailbot.reading"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            self._waiting = deque()  # this helper's own: an old one's end cannot touch them
            threading.Thread(
                target=self._answers,
                args=(self._helper, self._waiting),
                name="reading",
                daemon=True,
            ).start()
            log.info("backlog: reading ahead in a helper process (pid %d)", self._helper.pid)
        return self._helper

    def _answers(
        self, helper: subprocess.Popen[bytes], waiting: deque[Future[list[Reading | None]]]
    ) -> None:
        """Hand each answer from HELPER to the oldest of its WAITING batches, in order."""
        assert helper.stdout is not None
        while True:
            try:
                answer = pickle.load(helper.stdout)
            except Exception as exc:  # EOF: the helper ended (or was told to)
                gone = HelperGone(f"reading helper ended: {type(exc).__name__} {exc}".strip())
                with self._lock:
                    unanswered = list(waiting)
                    waiting.clear()
                for future in unanswered:
                    future.set_exception(gone)
                return
            with self._lock:
                future = waiting.popleft()
            future.set_result(answer)

    def _failed(self, exc: BaseException) -> None:
        log.warning("reading helper stopped (%s): reading in the main process", exc)
        self.close()


class HelperGone(Exception):
    """The reading helper ended before it answered."""


def serve() -> None:
    """The helper's loop: a batch in on stdin, its readings out on stdout, until stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon stops it, in its own time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            raws, reader = pickle.load(requests)
        except EOFError:
            return
        pickle.dump(read_batch(raws, reader), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


if __name__ == "__main__":  # under its own name, so the pickles name mailbot.reading's classes
    import mailbot.reading

    mailbot.reading.serve()
