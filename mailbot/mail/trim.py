"""Reply trimming: keep only the new part of a staff reply (no quoted history, no signature)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words mail clients put in an attribution line ("On <date>, <name> wrote:"), per language:
# en, de, fr, it, es, pt, nl, sv/da/no, pl, ru, uk, zh, fi, cs, hu.
_WROTE_VERBS = (
    r"wrote|schrieb|a\s+écrit|ha\s+scritto|escribió|escreveu|skrev|napisał(?:\(a\))?|"
    r"написал(?:\(а\))?|пише|het\s+volgende\s+geschreven|schreef|写道|kirjoitti|napsal|írta"
)
# An attribution line: it names the writer (a date or an address) and ends with a colon, or
# with "----" (some webmails write "---- On <date> <name> wrote ----").
_ATTRIBUTION = re.compile(
    rf"^(?=.*[\d@]).{{0,250}}(?<!\w)(?:{_WROTE_VERBS})(?!\w).{{0,120}}(?:[:：]|\s-{{2,}})$",
    re.IGNORECASE,
)
# Gmail's older attribution: "2016-03-03 17:21 GMT+01:00 Name <address>:" (colon optional).
_GMAIL_DATE_ATTRIBUTION = re.compile(
    r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}\s+"
    r"(?:\d{1,2}:\d{2}\s+GMT[+-]\d{1,2}:?\d{2}\b.*|.*<[^<>\s]+@[^<>\s]+>\s*:?)$"
)
# What every _ATTRIBUTION ends with, and how every _GMAIL_DATE_ATTRIBUTION starts: cheap
# tests that rule most lines out before the full patterns are tried.
_ATTRIBUTION_ENDS = (":", "：", "--")
_GMAIL_START = re.compile(r"\d{4}[-/]")
# An attribution's first line holds the date or the address (or the verb itself).
_ATTRIBUTION_START = re.compile(rf"[\d@]|(?<!\w)(?:{_WROTE_VERBS})(?!\w)", re.IGNORECASE)
# A line ending like a sentence ("email.", "then...", not "28." of a date) is not wrapped on.
_SENTENCE_END = re.compile(r"(?<!\d)[.!?…]\s*$")
# A year and a time of day: how a wrapped attribution's first line looks.
_DATED = re.compile(r"\b(?:19|20)\d\d\b.*\b\d{1,2}:\d\d\b|\b\d{1,2}:\d\d\b.*\b(?:19|20)\d\d\b")
# How many physical lines an attribution may be wrapped over by the sending client.
_ATTRIBUTION_MAX_LINES = 5

# "-----Original Message-----", Gmail's "---------- Forwarded message ---------", Apple's
# "Begin forwarded message:", and their translations.
_FORWARD_MARKER = re.compile(
    r"^[\s*_-]*(?:original\s+message|forwarded\s+message|begin\s+forwarded\s+message|"
    r"ursprüngliche\s+nachricht|weitergeleitete\s+nachricht|anfang\s+der\s+weitergeleiteten\s+"
    r"nachricht|mensaje\s+original|mensaje\s+reenviado|message\s+d'origine|message\s+transféré|"
    r"début\s+du\s+message\s+réexpédié|messaggio\s+originale|messaggio\s+inoltrato|"
    r"mensagem\s+original|mensagem\s+encaminhada|oorspronkelijk\s+bericht|"
    r"doorgestuurd\s+bericht|originalmeddelande|vidarebefordrat\s+meddelande|"
    r"oprindelig\s+meddelelse|opprinnelig\s+melding|wiadomość\s+oryginalna)"
    r"[\s*_:-]*$",
    re.IGNORECASE,
)

# Header names of an embedded message ("From: ... Sent: ... To: ... Subject:"), as Outlook
# and other clients write them in their language, some in bold ("*From:*", "**From:**").
_SENDER_KEYS = r"from|von|de|da|från|fra|van|od|от|від|lähettäjä|feladó|发件人|寄件者"
_HEADER_KEYS = (
    _SENDER_KEYS + r"|sent|date|to|cc|bcc|subject|reply-to|organization|gesendet|datum|an|betreff|"
    r"envoyé|à|objet|enviado|enviada|fecha|para|asunto|assunto|data|inviato|a|oggetto|"
    r"risposta|skickat|till|ämne|kopia|sendt|til|emne|verzonden|aan|onderwerp|wysłano|do|"
    r"temat|отправлено|кому|тема|дата|надіслано|发送时间|收件人|主题"
)
_HEADER_LINE = re.compile(rf"^[*_]{{0,2}}(?:{_HEADER_KEYS})[*_]{{0,2}}\s*[:：]", re.IGNORECASE)
_SENDER_LINE = re.compile(rf"^[*_]{{0,2}}(?:{_SENDER_KEYS})[*_]{{0,2}}\s*[:：]", re.IGNORECASE)
# A "From:" line starts an embedded message when at least this many header lines follow it
# closely (one "From:" alone may be a sentence).
_HEADER_BLOCK_MIN_MORE = 2
_HEADER_BLOCK_WINDOW = 6

# A line standing alone that separates the message from a signature or from quoted history:
# "-- " (RFC 3676), "--", Outlook's "_____", "-----", "=====", "*****", "~~~~~", "+++++", and
# "* * *" drawn by hand, and "ᐧ" (the mark an email-tracking extension appends).
# Never "#": staff commands start with it.
_DELIMITER = re.compile(r"^\s*(?:--|[-_=*~+]{4,}|\*(?: \*){2,}|\u1427)\s*$")

# Signatures that mobile and desktop mail apps append, as a short line of their own (a
# sentence such as "Sent from the warehouse on Monday." is not one).
_APP_SIGNATURE = re.compile(
    r"^[\s(<]*(?:sent\s+from\s+(?:my\s|a\s+phone|mobile|\[?mail\b|outlook|yahoo|windows|"
    r"mailbox|gmail|proton|"
    r"samsung|iphone|ipad|android)|sent\s+(?:via|with|by)\s+\S+(?:\s+\S+)?[\s>)]*$|"
    r"get\s+\[?outlook\b|from\s+my\s+(?:iphone|ipad|android|mobile|phone|samsung|galaxy)|"
    r"\S+\s+from\s+(?:my\s+)?mobile\s*$|envoyé\s+(?:de|depuis)\s+mon\s|"
    r"von\s+meinem\s.*gesendet|diese\s+nachricht\s+wurde\s+von\s+meinem\s|"
    r"verzonden\s+(?:met|vanaf|van)\s|sendt\s+fra\s+min\s|skickat\s+från\s+min\s|"
    r"enviado\s+(?:desde|do)\s+(?:mi|meu)\s|inviato\s+da\s|wysłane\s+z\s|"
    r"отправлено\s+с\s|надіслано\s+з\s|[从從]我的|我的\s*iphone|發自我的|iphoneから送信)",
    re.IGNORECASE,
)
_APP_SIGNATURE_MAX_LENGTH = 100

# A quoted line: "> text", or a Supercite prefix such as "Richard> text" or "C> text".
_QUOTED = re.compile(r"^\s*[A-Za-z]{0,10}>")

# The first line of mailbot's letters to staff (templates/_reply_above.txt.j2): below it is
# our letter quoted back, however the client quoted it (with ">", under a header, or bare,
# with no mark a trimmer could see). html2text may escape its dashes ("\-----") or bold it.
_REPLY_ABOVE = re.compile(r"^[\W_]*please\s+reply\s+above\s+this\s+line[\W_]*$", re.IGNORECASE)


def trim_reply(text: str) -> str:
    """Return the new part of reply TEXT: without quoted history and signature.

    Plain text in, plain text out; HTML replies are made text first (html_text). What is removed:
    the attribution line ("On <date>, <name> wrote:" in a dozen languages) and the quote
    under it, an embedded message ("From: ... Sent: ... To: ... Subject:", "-----Original
    Message-----", forwarded-message markers) and everything after it, a signature after a
    "-- " or "____" line, and mail-app signatures ("Sent from my iPhone"). A reply written
    between quoted passages keeps those passages, so no new line is lost; only a quote
    that trails the reply is dropped.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = _drop_leading_history(lines)
    lines = _cut_at_history(lines)
    lines = _drop_trailing_quote(lines)
    return "\n".join(lines).strip("\n").rstrip()


def starts_history(lines: list[str], index: int) -> bool:
    """Whether quoted or embedded history starts at line INDEX of a reply: a quoted line, an
    attribution, a forward marker, an embedded message's headers, or our reply-above line."""
    line = lines[index]
    return bool(
        _is_quoted(line)
        or _REPLY_ABOVE.match(line)
        or _FORWARD_MARKER.match(line)
        or _starts_header_block(lines, index)
        or _attribution_size(lines, index, allow_quoted=True)
    )


def _drop_leading_history(lines: list[str]) -> list[str]:
    """Drop history that comes before the reply: a reply written under the quote it answers,
    or a forwarded message that starts the body."""
    while True:
        start = _next_nonblank(lines, 0)
        if start is None:
            return []
        size = _attribution_size(lines, start, allow_quoted=True)
        if size:
            after = _next_nonblank(lines, start + size)
            if after is not None and _is_quoted(lines[after]):
                lines = lines[_end_of_quote(lines, after) :]
            else:
                lines = lines[start + size :]
            continue
        if _FORWARD_MARKER.match(lines[start]):
            lines = lines[start + 1 :]
            continue
        if _starts_header_block(lines, start):
            lines = lines[_end_of_header_block(lines, start) :]
            continue
        return lines


def _cut_at_history(lines: list[str]) -> list[str]:
    """Keep the lines before the first signature or quoted history; an attribution followed
    by a quote and then more new text is an interleaved reply: only its line goes."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        size = _attribution_size(lines, index, allow_quoted=True)
        if size:
            after = _next_nonblank(lines, index + size)
            if after is not None and _is_quoted(lines[after]):
                resume = _next_nonblank(lines, _end_of_quote(lines, after))
                if resume is not None and _is_new_text(lines, resume):
                    index += size
                    continue
            return kept
        if _REPLY_ABOVE.match(line):
            return kept
        if _is_quoted(line):
            kept.append(line)
            index += 1
            continue
        if (
            _DELIMITER.match(line)
            or _is_app_signature(line)
            or _FORWARD_MARKER.match(line)
            or _starts_header_block(lines, index)
        ):
            return kept
        kept.append(line)
        index += 1
    return kept


def _drop_trailing_quote(lines: list[str]) -> list[str]:
    """Drop a quote that ends the reply, when there is new text above it."""
    end = len(lines)
    while end > 0 and (not lines[end - 1].strip() or _is_quoted(lines[end - 1])):
        end -= 1
    if end == 0:
        return lines
    return lines[:end]


def _attribution_size(lines: list[str], index: int, *, allow_quoted: bool) -> int:
    """How many lines the attribution starting at INDEX spans (clients wrap long ones); 0 if
    none starts there."""
    if not _ATTRIBUTION_START.search(lines[index]) or lines[index].lstrip().startswith("#"):
        return 0  # "Thanks,\nJo\n\nOn <date> ... wrote:" starts at "On", not at "Thanks,"
    if _is_quoted(lines[index]) and not allow_quoted:
        return 0
    parts: list[str] = []
    for size in range(1, _ATTRIBUTION_MAX_LINES + 1):
        if index + size > len(lines):
            break
        if parts and _SENTENCE_END.search(parts[-1]):
            break  # a finished sentence is text, not the first part of a wrapped attribution
        if parts and not lines[index + size - 1].strip() and not _DATED.search(parts[0]):
            break  # only a line with a year and a time wraps across a blank line

        parts.append(_unquote(lines[index + size - 1]).strip())
        if not parts[-1].endswith(_ATTRIBUTION_ENDS) and not _GMAIL_START.match(parts[0]):
            continue  # neither pattern can match: their costly backtracking is skipped
        joined = " ".join(part for part in parts if part)
        if _ATTRIBUTION.match(joined) or _GMAIL_DATE_ATTRIBUTION.match(joined):
            return size
    return 0


def _starts_header_block(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if not _SENDER_LINE.match(line):
        return False
    window = lines[index + 1 : index + 1 + _HEADER_BLOCK_WINDOW]
    more = sum(1 for other in window if _HEADER_LINE.match(other.strip()))
    return more >= _HEADER_BLOCK_MIN_MORE


def _end_of_header_block(lines: list[str], index: int) -> int:
    """The index just past a header block and the blank lines after it."""
    while index < len(lines) and lines[index].strip():
        index += 1
    return index


def _end_of_quote(lines: list[str], index: int) -> int:
    """The index just past the quote (quoted and blank lines) starting at INDEX."""
    while index < len(lines) and (not lines[index].strip() or _is_quoted(lines[index])):
        index += 1
    return index


def _is_new_text(lines: list[str], index: int) -> bool:
    line = lines[index]
    return not (
        _is_quoted(line)
        or _REPLY_ABOVE.match(line)
        or _DELIMITER.match(line)
        or _is_app_signature(line)
        or _FORWARD_MARKER.match(line)
        or _starts_header_block(lines, index)
        or _attribution_size(lines, index, allow_quoted=False)
    )


def _next_nonblank(lines: list[str], index: int) -> int | None:
    while index < len(lines):
        if lines[index].strip():
            return index
        index += 1
    return None


def _is_app_signature(line: str) -> bool:
    return len(line.strip()) <= _APP_SIGNATURE_MAX_LENGTH and bool(_APP_SIGNATURE.match(line))


def _is_quoted(line: str) -> bool:
    return bool(_QUOTED.match(line))


def _unquote(line: str) -> str:
    return re.sub(r"^(?:\s*>)+", "", line)


# How a reply closes: "Kind regards," "Thanks," "Best wishes" ... on a line of its own, or
# with the writer's name after it ("Thanks, Morgan").
_VALEDICTION = re.compile(
    r"^(?:(?:kind|best|warm|warmest|many|with\s+(?:kind\s+|best\s+)?)?\s*"
    r"(?:regards|wishes|thanks)|thanks(?:\s+again|\s+very\s+much)?|thank\s+you(?:\s+again)?|"
    r"best|cheers|yours(?:\s+(?:sincerely|faithfully|truly))?|sincerely|all\s+the\s+best|"
    r"speak\s+soon|take\s+care)[\s,.!-]*(?P<name>[^\W\d_][\w .'-]{0,60})?$",
    re.IGNORECASE,
)
_SIGN_OFF_MAX_LINES = 4  # the closing, a name, a job title, a phone number


@dataclass(frozen=True)
class Reply:
    """A staff reply's words for the customer, split from their own sign-off."""

    words: str  # what they wrote, without quotes under it and without the sign-off
    sign_off: str  # "Kind regards,\nMorgan" ("" when they wrote none)


def split_sign_off(text: str, name: str) -> Reply:
    """TEXT (a trimmed reply) as its words and the sign-off of NAME, its writer, if any.

    A sign-off is a closing line ("Kind regards,") with up to three short lines under it,
    or a last line that is only the writer's name (or first name). Quoted lines left under
    the words (a reply written above a quote) are no words of theirs for the customer.
    """
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    while lines and (not lines[-1].strip() or _is_quoted(lines[-1])):
        lines.pop()
    names = {part.lower() for part in (name, *name.split()) if len(part) > 1}
    start = len(lines)
    for index in range(len(lines) - 1, max(len(lines) - _SIGN_OFF_MAX_LINES, 0) - 1, -1):
        line = lines[index].strip()
        if not line:
            break
        found = _VALEDICTION.match(line)
        named = found.group("name") if found else None
        if found and (named is None or named.strip(" .").lower() in names):
            start = index
            break
        if index == len(lines) - 1 and line.strip(" .,-").lower() in names:
            start = index  # a bare name ends it; a closing above it may come next
            continue
        if len(line) > 40:
            break
    words = "\n".join(lines[:start]).strip("\n")
    if not any(line.strip() and not _is_quoted(line) for line in lines[:start]):
        words = ""
    return Reply(words, "\n".join(lines[start:]).strip())
