"""The read stage: all mailbot learns of a message from its bytes alone, without the database."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailbot.mail.bounce import BounceReport, read_bounce
from mailbot.mail.classify import Classification, Sender, classify
from mailbot.mail.digest import content_digest
from mailbot.mail.parse import ParsedMessage, parse_message_tree
from mailbot.mail.trim import trim_reply
from mailbot.procedure.deadlock import deadlock_request
from mailbot.procedure.details import Detail, find_details


@dataclass(frozen=True)
class Reader:
    """Reads messages with what reading needs from the settings."""

    own_addresses: frozenset[str]
    deadlock_phrases: tuple[str, ...]

    def read(self, raw: bytes, digest: str | None = None) -> Reading:
        """Read RAW; nothing here raises on bad mail (parse_message never does).

        DIGEST (mail.digest.content_digest of RAW) names a message that has no Message-ID.
        """
        parsed, tree = parse_message_tree(raw, digest or content_digest(raw))
        verdict = classify(parsed, self.own_addresses)
        bounce = read_bounce(raw, tree) if verdict.sender is Sender.BOUNCE else None
        return Reading(parsed, verdict, bounce, self.deadlock_phrases)


@dataclass
class Reading:
    """One message read: parsed and classified; the procedure's questions of its text are
    answered when first asked, once."""

    parsed: ParsedMessage
    verdict: Classification
    bounce: BounceReport | None  # read only when the verdict is a bounce
    deadlock_phrases: tuple[str, ...]
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
            self._deadlock[text] = deadlock_request(text, self.deadlock_phrases)
        return self._deadlock[text]
