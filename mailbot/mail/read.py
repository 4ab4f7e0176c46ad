"""The read stage: all mailbot learns of a message from its bytes alone, without the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from mailbot.mail.bounce import BounceReport, read_bounce
from mailbot.mail.classify import Classification, Sender, classify
from mailbot.mail.fingerprint import content_sha256
from mailbot.mail.parse import ParsedMessage, parse_message_tree
from mailbot.mail.spam import SpamRules, SpamVerdict, spam_verdict
from mailbot.mail.trim import trim_reply


@dataclass(frozen=True)
class Reader:
    """Reads messages with what reading needs from the settings."""

    own_addresses: frozenset[str]
    spam: SpamRules = field(default_factory=SpamRules)  # the verdicts that count

    def read(self, raw: bytes, fingerprint: str | None = None) -> Reading:
        """Read RAW; nothing here raises on bad mail (parse_message never does).

        FINGERPRINT (mail.fingerprint.content_sha256 of RAW) names a message with no Message-ID.
        """
        parsed, tree = parse_message_tree(raw, fingerprint or content_sha256(raw))
        verdict = classify(parsed, self.own_addresses)
        bounce = read_bounce(raw, tree) if verdict.sender is Sender.BOUNCE else None
        return Reading(parsed, verdict, bounce, spam_verdict(parsed, self.spam))


@dataclass
class Reading:
    """One message read: parsed and classified; its new text trimmed when first asked."""

    parsed: ParsedMessage
    verdict: Classification
    bounce: BounceReport | None  # read only when the verdict is a bounce
    spam: SpamVerdict = field(default_factory=SpamVerdict)  # mail.spam

    @cached_property
    def new_text(self) -> str:
        """The new part of the text: quoted history and signature trimmed."""
        return trim_reply(self.parsed.text)
