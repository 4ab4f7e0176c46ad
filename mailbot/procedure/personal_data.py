"""Complaints about personal data (DUAA 2025 s.103) and subject access (UK GDPR Art. 12(3))."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from mailbot.procedure.calendar import add_months
from mailbot.procedure.needs import NEED_LOWER, folded, support_sentences, words_in

DATA_PROTECTION = "data_protection"  # the case's flag: the DPO gets its copies
SUBJECT_ACCESS_MONTHS = 1  # Art. 12(3): one month after receipt
EXTENSION_MONTHS = 2  # Art. 12(3): "extended by two further months", once

# What a complaint about the handling of personal data says (data breach, wrong recipient,
# "data protection", GDPR, marketing consent, deletion of data): regular expressions matched
# ignoring case at word boundaries (tests/test_needs.py: what each finds, and must not)
DATA_PROTECTION_PHRASES = (
    r"data\s+protection",
    r"U?K?\s*GDPR",
    r"data\s+(breach|leak)",
    r"(personal\s+)?(data|information|details)\s+(was|were|has\s+been|have\s+been)\s+"
    r"(sent|shared|leaked|disclosed|exposed|passed\s+on|sold)",
    r"(sent|emailed|posted|gave|given|shared)\s+(\w+\s+){0,3}to\s+(the\s+)?wrong\s+"
    r"(person|address|customer|people)",
    r"wrong\s+recipient",
    r"someone\s+else'?s\s+(bill|account|details|data|information|letter)",
    r"(opted|opt)\s+out\s+of\s+(all\s+)?marketing",
    r"marketing\s+(consent|preferences)",
    r"without\s+my\s+(consent|permission)",
    r"(delete|erase|remove)\s+(all\s+)?(of\s+)?my\s+(personal\s+)?(data|information|details)",
    r"right\s+to\s+(be\s+forgotten|erasure)",
    r"information\s+commissioner('s)?(\s+office)?",
    r"ICO",
)
# A request for a copy of one's own personal data (a subject access request)
SUBJECT_ACCESS_PHRASES = (
    r"(data\s+)?subject\s+access\s+request",
    r"D?SAR",
    r"right\s+of\s+access",
    r"cop(y|ies)\s+of\s+(all\s+)?(the\s+)?(my\s+)?(personal\s+)?(data|information)\s+"
    r"(that\s+)?(you|your\s+company)\s+(hold|have|keep|store|process)",
    r"cop(y|ies)\s+of\s+(all\s+)?(of\s+)?my\s+(personal\s+)?data",
    r"(all\s+)?(the\s+)?(personal\s+)?(data|information)\s+(that\s+)?you\s+"
    r"(hold|have|keep|store)\s+(on|about)\s+me",
)
# matched on lower-cased text (needs.words_in): lower-case patterns, no re.IGNORECASE
_DATA_PROTECTION = re.compile((r"\b(" + "|".join(DATA_PROTECTION_PHRASES) + r")\b").lower())
_SUBJECT_ACCESS = re.compile((r"\b(" + "|".join(SUBJECT_ACCESS_PHRASES) + r")\b").lower())
# the three lists in one pass: no match of it, none of any (bench/backlog: a third of the
# time of three passes over the most common message, one that says none of them)
_ANY = re.compile("|".join(p.pattern for p in (NEED_LOWER, _DATA_PROTECTION, _SUBJECT_ACCESS)))


def about_personal_data(text: str) -> str | None:
    """The words of TEXT that make it a complaint about personal data, or None."""
    return words_in(_DATA_PROTECTION, text)


def asks_for_own_data(text: str) -> str | None:
    """The words of TEXT that ask for a copy of the writer's personal data, or None."""
    return words_in(_SUBJECT_ACCESS, text)


def subject_access_due(received: date, extended: bool = False) -> date:
    """When a request received on RECEIVED must be answered: one calendar month later (the
    31st to a month without one: its last day), three once extended by two months."""
    months = SUBJECT_ACCESS_MONTHS + (EXTENSION_MONTHS if extended else 0)
    return add_months(received, months)


@dataclass(frozen=True)
class Noticed:
    """What a customer's own words point out beside the complaint, for staff to act on."""

    received_at: datetime
    support: tuple[str, ...] = ()  # sentences that suggest a need (quoted to staff)
    personal_data: str | None = None  # words of a complaint about personal data
    subject_access: str | None = None  # words asking for a copy of their data


def notice(text: str, received_at: datetime) -> Noticed:
    """What TEXT (a customer's complaint or the new part of a reply) points out."""
    if _ANY.search(folded(text)[1]) is None:  # most mail: none of the lists, in one pass
        return Noticed(received_at)
    return Noticed(
        received_at,
        support_sentences(text),
        about_personal_data(text),
        asks_for_own_data(text),
    )
