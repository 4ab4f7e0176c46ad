"""R1: which of the details a complaint should contain a message gives (name, contact, ...)."""

from __future__ import annotations

import re
from collections.abc import Set
from enum import StrEnum
from itertools import islice


class Detail(StrEnum):
    """R1 "What a complaint should contain", in the procedure's order."""

    NAME = "name"
    CONTACT = "contact details"
    SERVICE = "service details"
    OUTLINE = "outline of the complaint"


# An outline needs this many words; fewer is a note, not a description of the problem.
OUTLINE_MIN_WORDS = 12

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_EMAIL_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# Whether a body holds one: starting at the "@" lets the search skip from one "@" to the
# next (a literal prefix) instead of trying a local part at every letter (3x faster).
_EMAIL_AT = re.compile(r"@(?<=[\w.+'-]@)[\w-]+(?:\.[\w-]+)+")
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]+)*\.?")

_MY_NAME_IS = re.compile(r"\bmy name is\s+(\S+)", re.I)
_NAME_FIELD = re.compile(r"^\s*(?:full\s+)?name\s*:\s*(.+?)\s*$", re.I | re.M)
_SIGN_OFF = re.compile(
    r"^\s*(?:(?:kind|best|warm|warmest|many)\s+)?"
    r"(?:regards|thanks|thank\s+you|cheers|wishes|yours(?:\s+(?:sincerely|faithfully|truly))?"
    r"|sincerely|best)"
    r"\s*[,.!-]?\s*(?P<rest>.*?)\s*$",
    re.I,
)

# Candidate phone numbers: up to five digit groups joined by one space or hyphen. The
# look-ahead first: one character's test fails at most positions before the look-behind's.
_PHONE_CANDIDATE = re.compile(r"(?=[+(\d])(?<![\w+])[+(]?\d[\d()]*(?:[ -]\(?\d[\d()]*){0,4}(?!\w)")
# A number _is_phone_number takes has 9 digits or more: "+1" and 8 (a UK one has 10 or 11).
_PHONE_MIN_DIGITS = 9
_NOT_DIGIT = re.compile(r"\D")
_UK_NATIONAL = re.compile(r"0[1-35789]\d{9}|01\d{8}|0800\d{6}")
_INTERNATIONAL = re.compile(r"\+(?!44)[1-9]\d{8,14}")
# A number right after one of these words is a reference, not a phone number...
_NOT_PHONE_CONTEXT = re.compile(
    r"\b(?:account|acct|customer|ref|reference|order|invoice|ticket|case|contract)\b", re.I
)
# ...unless a phone word comes after it ("account holder, mobile 07...").
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|telephone|tel|mobile|mob|landline|call|ring|text|contact)\b", re.I
)
# Each of the word lists below starts with a look-ahead for its words' first letters: a
# cheap test at every position of a long body before the alternatives are tried (4x faster).
_CONTACT_PREFERENCE = re.compile(
    r"\b(?=[bceprt])(?:(?:contact|call|phone|ring|text|e-?mail|reach|email)\s+me"
    r"|by\s+(?:e-?mail|phone|telephone|mobile|text)"
    r"|(?:best|preferred)\s+(?:way|number|time)\s+to\s+(?:contact|reach|call))\b",
    re.I,
)

# R1's service details: an account or other reference, a postcode, or a service word. One
# regex with one \b for all three: a position that is no word boundary costs one test, not
# three scans of the body (2x faster).
_SERVICE_DETAIL = re.compile(
    r"\b(?:"
    # an account or other reference
    r"(?=[acor])(?:account|acct|a/c|customer|reference|ref|order|contract)\s*"
    r"(?:no\b\.?|number|num\b|id\b|ref(?:erence)?\b|#)?\s*(?:is\s+)?[:#]?\s*"
    r"(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9/-]{3,}"
    # Royal Mail's shape for a full postcode; upper case only, as lower case finds prose
    # like "m25 3rd"
    r"|(?-i:(?:GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b)"
    # a service word
    r"|(?=[abcdefhilmoprsuvw])(?:broadband|fibre|fiber|internet|line|lines|landline"
    r"|phone\s+line|router|hub|modem|wi-?fi|adsl|vdsl|fttp|fttc|voip|e-?mail\s+account|mailbox"
    r"|hosting|web\s*space|domain|domains|package|contract|bill|bills|billing|invoice"
    r"|connection|connections|speed|speeds|download|upload|outage)\b"
    r")",
    re.I,
)


def find_details(sender_name: str, text: str) -> frozenset[Detail]:
    """The R1 details found in a message; conservative, so a doubtful detail counts as missing.

    NAME: a display name with a word of letters that is not an address, "my name is X",
    a "Name:" line, or a capitalised name after a sign-off ("Kind regards,").
    CONTACT: a phone number (UK, or international with "+"), an e-mail address in the
    body, or a stated preference ("call me", "by email"). SERVICE: an account or customer
    number or reference, a UK postcode, or a service word (broadband, router, bill ...).
    OUTLINE: at least OUTLINE_MIN_WORDS words. Quoted lines ("> ...") are ignored.
    """
    body = _unquoted(text)
    found: set[Detail] = set()
    if _name_in_display_name(sender_name) or _name_in_body(body):
        found.add(Detail.NAME)
    if _has_contact_details(body):
        found.add(Detail.CONTACT)
    if _has_service_details(body):
        found.add(Detail.SERVICE)
    if next(islice(_WORD.finditer(body), OUTLINE_MIN_WORDS - 1, None), None) is not None:
        found.add(Detail.OUTLINE)
    return frozenset(found)


def missing_details(found: Set[Detail]) -> list[Detail]:
    """The details not found, in the procedure's order, for the acknowledgement to ask for."""
    return [detail for detail in Detail if detail not in found]


def _unquoted(text: str) -> str:
    # Quoted earlier mail (ours or theirs) says nothing about what this message gives.
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def _name_in_display_name(sender_name: str) -> bool:
    tokens = sender_name.strip().strip("\"'").split()
    return any(_has_letter_word(token) for token in tokens if not _EMAIL_ADDRESS.search(token))


def _has_letter_word(token: str) -> bool:
    return any(len(word) >= 2 for word in _WORD.findall(token))


def _name_in_body(body: str) -> bool:
    return _name_in_words(body) or _name_signed(body)


def _name_in_words(body: str) -> bool:
    """The name in "my name is X" or a "Name: X" line."""
    # Both need the word "name", which re.I finds only where str.lower() makes it (none of
    # its letters has another case-fold): one search in C spares two regex scans of the body.
    if "name" not in body.lower():
        return False
    # "my name is on the account" is not a name: the word after must be capitalised.
    if any(_looks_like_name(match.group(1)) for match in _MY_NAME_IS.finditer(body)):
        return True
    return any(_looks_like_name(match.group(1)) for match in _NAME_FIELD.finditer(body))


def _name_signed(body: str) -> bool:
    """A capitalised name after a sign-off, on its line or the next."""
    lines = [line.strip() for line in body.splitlines()]
    for index, line in enumerate(lines):
        sign_off = _SIGN_OFF.fullmatch(line)
        if sign_off is None:
            continue
        rest = sign_off.group("rest")
        if rest:
            if _looks_like_name(rest):
                return True
            continue
        following = next((later for later in lines[index + 1 :] if later), "")
        if _looks_like_name(following):
            return True
    return False


def _looks_like_name(line: str) -> bool:
    """One to four capitalised words of letters, e.g. "Bob Smith", "Mary O'Neill", "J. Patel"."""
    words = line.strip().rstrip(",.").split()
    if not 1 <= len(words) <= 4 or len(line) > 60:
        return False
    return all(_NAME_WORD.fullmatch(word) and word[0].isupper() for word in words) and any(
        _has_letter_word(word) for word in words
    )


def _has_contact_details(body: str) -> bool:
    return bool(
        _CONTACT_PREFERENCE.search(body)
        or ("@" in body and _EMAIL_AT.search(body))
        or _has_phone_number(body)
    )


def _has_phone_number(body: str) -> bool:
    for match in _PHONE_CANDIDATE.finditer(body):
        if len(_NOT_DIGIT.sub("", match.group())) < _PHONE_MIN_DIGITS:
            continue  # a date, an amount, a count
        if _is_reference_context(body[max(0, match.start() - 30) : match.start()]):
            continue
        # Any run of whole digit groups may be the number: "07700 900123 2 times", "6 07700 900123".
        groups = re.split(r"[ -]", match.group())
        runs = (
            " ".join(groups[first:last])
            for first in range(len(groups))
            for last in range(first + 1, len(groups) + 1)
        )
        if any(_is_phone_number(run) for run in runs):
            return True
    return False


def _is_reference_context(before: str) -> bool:
    references = list(_NOT_PHONE_CONTEXT.finditer(before))
    if not references:
        return False
    phones = list(_PHONE_CONTEXT.finditer(before))
    return not phones or phones[-1].start() < references[-1].start()


def _is_phone_number(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if candidate.startswith("+44") or digits.startswith("0044"):
        national = digits.removeprefix("00").removeprefix("44")
        return bool(_UK_NATIONAL.fullmatch("0" + national.removeprefix("0")))
    if candidate.startswith("+"):
        return bool(_INTERNATIONAL.fullmatch("+" + digits))
    return bool(_UK_NATIONAL.fullmatch(digits))


def _has_service_details(body: str) -> bool:
    return bool(_SERVICE_DETAIL.search(body))
