"""Reading a message: all mailbot learns from its bytes alone, done ahead in a helper process."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from mailbot.mail.bounce import BounceReport, read_bounce
from mailbot.mail.classify import Classification, Sender, classify
from mailbot.mail.parse import ParsedMessage, parse_message
from mailbot.mail.trim import trim_reply
from mailbot.procedure.deadlock import deadlock_request
from mailbot.procedure.details import Detail, find_details

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reader:
    """What reading needs from the settings: plain values, so a helper process gets a copy."""

    own_addresses: frozenset[str]
    deadlock_phrases: tuple[str, ...]


@dataclass(frozen=True)
class Reading:
    """One message read: parsed, classified, and the procedure's questions of its text answered.

    The answers are worked out for the usual question (the sender's name, the whole text, the
    new part of a reply); asked of anything else, they are worked out on the spot.
    """

    parsed: ParsedMessage
    verdict: Classification
    bounce: BounceReport | None  # read only when the verdict is a bounce
    new_text: str  # the reply with quoted history trimmed
    details_name: str
    found_details: frozenset[Detail]
    deadlock_in_text: str | None
    deadlock_in_new_text: str | None
    reader: Reader

    def details(self, name: str, text: str) -> frozenset[Detail]:
        """find_details(NAME, TEXT)."""
        if name == self.details_name and text == self.parsed.text:
            return self.found_details
        return find_details(name, text)

    def deadlock_words(self, text: str) -> str | None:
        """deadlock_request(TEXT) with the configured phrases."""
        if text == self.parsed.text:
            return self.deadlock_in_text
        if text == self.new_text:
            return self.deadlock_in_new_text
        return deadlock_request(text, self.reader.deadlock_phrases)


def read(raw: bytes, reader: Reader, sha256: str | None = None) -> Reading:
    """Read RAW; parse_message never raises, and neither does anything else here on bad mail."""
    sha256 = sha256 or hashlib.sha256(raw).hexdigest()
    parsed = parse_message(raw, sha256)
    verdict = classify(parsed, reader.own_addresses)
    bounce = read_bounce(raw) if verdict.sender is Sender.BOUNCE else None
    machine = verdict.is_machine
    new_text = "" if machine else trim_reply(parsed.text)
    customer = parsed.reply_to[0] if parsed.reply_to else parsed.sender
    name = (parsed.sender.name if parsed.sender else "") or (customer.name if customer else "")
    phrases = reader.deadlock_phrases
    return Reading(
        parsed=parsed,
        verdict=verdict,
        bounce=bounce,
        new_text=new_text,
        details_name=name,
        found_details=frozenset() if machine else find_details(name, parsed.text),
        deadlock_in_text=None if machine else deadlock_request(parsed.text, phrases),
        deadlock_in_new_text=None if machine else deadlock_request(new_text, phrases),
        reader=reader,
    )


def read_batch(raws: Sequence[bytes | None], reader: Reader) -> list[Reading | None]:
    """Read each message; None for a message skipped (too large) or one that failed."""
    readings: list[Reading | None] = []
    for raw in raws:
        try:
            readings.append(None if raw is None else read(raw, reader))
        except Exception:  # read again in the main process, where a failure is quarantined
            readings.append(None)
    return readings


def _quiet() -> None:
    """A helper leaves signals to the daemon, which stops it in its own time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Readers:
    """A helper process reading fetched batches while the main process works the database.

    It uses the second core: parsing is about half of the work per message. If the helper
    dies, the batch is read in the main process instead and a new helper starts next time.
    """

    def __init__(self, reader: Reader, max_bytes: int) -> None:
        self.reader = reader
        self.max_bytes = max_bytes
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, raws: Sequence[bytes]) -> Future[list[Reading | None]] | None:
        """Start reading RAWS in the helper; None if it cannot take them."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet
            )
        work = [raw if len(raw) <= self.max_bytes else None for raw in raws]
        try:
            return self._pool.submit(read_batch, work, self.reader)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._failed(exc)
            return None

    def result(
        self, future: Future[list[Reading | None]] | None, count: int
    ) -> list[Reading | None]:
        """The readings of a submitted batch; all None (read in-process) if the helper died."""
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool as exc:
                self._failed(exc)
        return [None] * count

    def _failed(self, exc: BaseException) -> None:
        log.warning("reading helper stopped (%s): reading in the main process", exc)
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
