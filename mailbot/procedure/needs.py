"""Support needs (Ofcom GC C5): the formats letters follow, and words that suggest a need."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

# `#needs FORMAT [NOTE]`: the formats a customer's letters can follow
LARGE_PRINT, PLAIN_TEXT = "large-print", "plain-text"
FORMATS = (LARGE_PRINT, PLAIN_TEXT, "braille", "audio", "easy-read", "other")
# each letter still goes by email, and the handlers are asked to make and send a copy
COPY_FORMATS = frozenset({"braille", "audio", "easy-read", "other"})
SUPPORT = "support"  # `#support NOTE`: a free-text support need, beside any format
NONE = "none"  # `#needs none`: every need removed


@dataclass(frozen=True)
class Need:
    """A need recorded by a member of staff: a FORMAT or SUPPORT, with their note."""

    need: str
    note: str
    recorded_by: str
    recorded_at: datetime


def letter_format(needs: Iterable[Need]) -> str:
    """The format the customer's letters follow ("" when none is recorded): the latest."""
    formats = [n.need for n in needs if n.need in FORMATS]
    return formats[-1] if formats else ""


def with_format(needs: tuple[Need, ...], need: Need) -> tuple[Need, ...]:
    """NEEDS with NEED recorded: a format replaces the earlier one, support notes add up."""
    if need.need == SUPPORT:
        return (*needs, need)
    return (*(n for n in needs if n.need not in FORMATS), need)


# Words in a customer's own message that suggest a need (sight, hearing, reading, disability,
# illness, mental health, bereavement, "vulnerable", another format). Staff are shown the
# sentence; nothing is recorded from it. Each is a regular expression, matched ignoring case
# at word boundaries; tests/test_needs.py holds the wording each must find, and must not.
NEED_PHRASES: dict[str, tuple[str, ...]] = {
    "sight": (
        r"(registered\s+)?blind",
        r"partially[\s-]+sighted",
        r"visual(ly)?[\s-]+impair\w*",
        r"sight\s+(loss|problems?|impair\w*)",
        r"poor\s+(eye)?sight",
        r"macular\s+degeneration",
    ),
    "hearing": (
        r"deaf",
        r"hard\s+of\s+hearing",
        r"hearing\s+(aids?|loss|impair\w*)",
        r"BSL",
        r"sign\s+language",
    ),
    "reading": (
        r"dyslexi\w*",
        r"(difficulty|difficulties|trouble|struggle|struggles)\s+(with\s+)?reading",
        r"(can\s*not|can'?t|unable\s+to)\s+read",
        r"learning\s+(disabilit(y|ies)|difficult(y|ies))",
    ),
    "disability": (
        r"disabilit(y|ies)",
        r"(i\s+am|i'm|am|is|are|registered|severely|physically|mentally)\s+disabled",
        r"disabled\s+(person|people|customer|son|daughter|husband|wife|child|partner|badge)",
        r"wheelchair",
        r"autis(m|tic)",
        r"ADHD",
    ),
    "illness": (
        r"(terminal(ly)?|seriously|chronically|very)\s+ill",
        r"illness",
        r"cancer",
        r"chemo(therapy)?",
        r"in\s+hospital",
        r"dementia",
        r"dialysis",
        r"medical\s+(condition|equipment|alarm)",
        r"(my\s+)?carer",
    ),
    "mental health": (
        r"mental\s+health",
        r"depression",
        r"anxiety",
        r"panic\s+attacks?",
        r"bipolar",
        r"PTSD",
        r"suicid\w*",
        r"breakdown",
    ),
    "bereavement": (
        r"passed\s+away",
        r"bereave\w*",
        r"(husband|wife|partner|mother|father|mum|dad|son|daughter|brother|sister|relative)"
        r"\s+(has\s+|had\s+|recently\s+)?died",
        r"death\s+of\s+my",
        r"funeral",
        r"widow(ed|er)?",
    ),
    "vulnerable": (r"vulnerab\w*",),
    "another format": (
        r"large\s+print",
        r"braille",
        r"audio\s+(version|format|cd|copy|recording)",
        r"easy[\s-]+read",
        r"(bigger|larger)\s+(font|text|print|writing|letters)",
        r"screen\s*reader",
        r"(another|a\s+different|an\s+accessible)\s+format",
    ),
}
_NEED = re.compile(
    r"\b(" + "|".join(p for phrases in NEED_PHRASES.values() for p in phrases) + r")\b",
    re.IGNORECASE,
)
NEED_LOWER = re.compile(_NEED.pattern.lower())  # the first pass, on lower-cased text
# "I am not vulnerable", "no disability": a denial just before the words is no need
_DENIED = re.compile(r"\b(not|no|never)\s+(\w+\s+)?$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_MOST_QUOTED = 300  # characters of a sentence the staff copy quotes


@lru_cache(maxsize=4)  # one message's text is looked at for each list in turn
def folded(text: str) -> tuple[str, str]:
    """TEXT with its lines joined, and that lower-cased."""
    joined = " ".join(text.split())
    return joined, joined.lower()


def words_in(lowered: re.Pattern[str], text: str) -> str | None:
    """The first words of TEXT (its lines joined) that LOWERED, a pattern of lower-case
    phrases, finds in it lower-cased: case-blind, three times as fast as re.IGNORECASE over a
    whole mail (bench/backlog)."""
    joined, lowered_text = folded(text)
    found = lowered.search(lowered_text)
    if found is None:
        return None
    same = len(lowered_text) == len(joined)  # (a few letters grow when lower-cased)
    return joined[found.start() : found.end()] if same else found.group(0)


def sentences(text: str) -> list[str]:
    """TEXT's sentences, each on one line (a mail's wrapped lines joined)."""
    return [" ".join(s.split()) for s in _SENTENCE_END.split(text) if s.strip()]


def support_sentences(text: str) -> tuple[str, ...]:
    """The sentences of TEXT (a customer's own words) that suggest a need, each once."""
    if words_in(NEED_LOWER, text) is None:  # most mail: one pass, no sentence split
        return ()
    found: list[str] = []
    for sentence in sentences(text):
        for match in _NEED.finditer(sentence):
            if not _DENIED.search(sentence[: match.start()]):
                quoted = sentence
                if len(sentence) > _MOST_QUOTED:
                    quoted = sentence[:_MOST_QUOTED].rsplit(" ", 1)[0] + " ..."
                if quoted not in found:
                    found.append(quoted)
                break
    return tuple(found)
