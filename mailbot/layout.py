"""A letter's text laid out: filled to 72 columns, and the same words as HTML blocks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

WIDTH = 72  # what every text client shows without wrapping a line again
HTML_WIDTH = 76  # RFC 2045's line limit: the HTML part goes as 7bit when it keeps to it
UNBROKEN = "\u00a0"  # joins the words of a date: a line never breaks inside one
MONTHS = frozenset(
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
)


def unbroken(words: str) -> str:
    """WORDS that no line of a letter breaks between (a date, a time)."""
    return words.replace(" ", UNBROKEN)


def fill_line(line: str, width: int = WIDTH, dates: bool = True) -> list[str]:
    """LINE broken at spaces into lines of at most WIDTH, each under the first's indent.

    A list item ("- ") and a quote ("> ") carry on under their text and their "> ". A word
    longer than WIDTH (a URL, a reference) stands on a line of its own, never broken, and
    (DATES) a date in someone's words ("27 November 2026") is kept on one line.
    """
    if len(line) <= width:
        return [line]
    body = line.lstrip(" ")
    indent = line[: len(line) - len(body)]
    if body.startswith("> "):
        first, rest, body = indent + "> ", indent + "> ", body[2:]
    elif body.startswith("- "):
        first, rest, body = indent + "- ", indent + "  ", body[2:]
    else:
        first = rest = indent
    lines: list[str] = []
    prefix = first
    while len(prefix) + len(body) > width:  # a line at a time, not a word at a time
        room = width - len(prefix)
        cut = body.rfind(" ", 0, room + 1)  # the last space that fits (UNBROKEN is none)
        while (
            dates and cut > 0 and _inside_a_date(body, cut)
        ):  # "27 November 2026" in someone's words
            cut = body.rfind(" ", 0, cut)
        if cut <= 0:  # a word longer than the room stands on a line of its own
            cut = body.find(" ", room)
            if cut < 0:
                break
        lines.append(prefix + body[:cut].rstrip(" "))
        body, prefix = body[cut + 1 :].lstrip(" "), rest
    if body:
        lines.append(prefix + body)
    return lines


def _inside_a_date(text: str, space: int) -> bool:
    """Whether the space at SPACE in TEXT is inside a date ("27 November", "November 2026")."""
    following = text[space + 1 : space + 2]
    if not (following.isupper() or following.isdigit()):
        return False  # most breaks: before a word in lower case
    before = text[text.rfind(" ", 0, space) + 1 : space].lstrip("(\"'")
    end = text.find(" ", space + 1)
    after = text[space + 1 : end if end >= 0 else len(text)].rstrip(",.;:)\"'")
    if after in MONTHS:
        day = before[:-2] if before.endswith(("st", "nd", "rd", "th")) else before
        return day.isdigit() and len(day) <= 2
    return before in MONTHS and after.isdigit() and len(after) == 4


@dataclass(frozen=True)
class Laid:
    """A letter in its two forms: the text part and the HTML body (to go in the layout)."""

    text: str
    html: str
    title: str


def lay_out(source: str, links: Links) -> Laid:
    """The text part and the HTML body of a letter, written as docs/operating.md "Letters" says.

    Blocks are separated by blank lines. A block whose second line is all "=" is the
    letter's title (h1), all "-" a heading (h2); a block of "- " lines is a list, of "> "
    lines a quote; any other block is a paragraph, its lines kept as lines. Lines longer
    than WIDTH are filled; the underline of a heading is as long as its words.
    """
    text_blocks: list[str] = []
    html_blocks: list[str] = []
    title = ""
    source = source.strip("\n")
    # escaped once for the whole letter: escaping keeps every line and block where it was
    for block, marked in zip(source.split("\n\n"), _escape(source).split("\n\n"), strict=True):
        lines = block.strip("\n").split("\n")
        if not lines[0]:
            continue
        html_lines = marked.strip("\n").split("\n")
        if len(lines) == 2 and lines[1] and not lines[1].strip("=-"):
            words = lines[0].strip()
            level = "h1" if lines[1][0] == "=" else "h2"
            title = title or words
            heading = fill_line(words)
            underline = lines[1][0] * max(map(len, heading))
            text_blocks.append("\n".join([*heading, underline]))
            html_blocks.append(f"<{level}>{html_lines[0].strip()}</{level}>")
            continue
        if any(len(line) > WIDTH for line in lines):
            lines = [part for line in lines for part in fill_line(line)]
        text_blocks.append("\n".join(lines))
        start = html_lines[0].lstrip()[:2]
        if start == "- " and all(line.lstrip()[:2] == "- " for line in html_lines):
            items = "".join(f"<li>{line.lstrip()[2:]}</li>\n" for line in html_lines)
            html_blocks.append(f"<ul>\n{items}</ul>")
        elif start[:1] == "&" and all(line.lstrip()[:4] == "&gt;" for line in html_lines):
            quoted = "<br>\n".join(line.lstrip()[4:].strip() for line in html_lines)
            html_blocks.append(f"<blockquote><p>{quoted}</p></blockquote>")
        else:
            html_blocks.append("<p>" + "<br>\n".join(html_lines) + "</p>")
    text = "\n\n".join(text_blocks).replace(UNBROKEN, " ") + "\n"
    html = links.linked("\n".join(html_blocks))  # one pass for the whole letter
    return Laid(text, html, title.replace(UNBROKEN, " "))


def _escape(words: str) -> str:
    return escape(words, quote=False)


class Links:
    """The web addresses, email addresses and phone numbers a letter names, made links.

    Only the ones the settings name (the scheme's, the complaints code's, ours, staff
    phones), found in one pass of one pattern built once: no guessing at what looks like a
    URL in a customer's words.
    """

    def __init__(self, targets: Mapping[str, str]) -> None:
        self.unbroken = [words for words in targets if " " in words]  # "0330 440 1614"
        known = {
            escape(unbroken(words), quote=False): href
            for words, href in targets.items()
            if words and href
        }
        self.targets = known
        longest_first = sorted(known, key=len, reverse=True)
        self.pattern = (
            re.compile("|".join(re.escape(words) for words in longest_first)) if known else None
        )

    def linked(self, html: str) -> str:
        """HTML (escaped text in our own tags) with each known address in its text a link."""
        return html if self.pattern is None else self.pattern.sub(self._link, html)

    def _link(self, found: re.Match[str]) -> str:
        words = found.group(0)
        # the tag may end on the next line: a long address stays within a 7bit line
        return f'<a href="{escape(self.targets[words])}"\n>{words}</a>'


def web_link(address: str) -> str:
    """The href of a web address written as a letter shows it ("www.example.org")."""
    return address if "://" in address else f"https://{address}"


def phone_link(number: str) -> str:
    """The tel: href of a UK number as people write it ("0330 440 1614")."""
    digits = "".join(ch for ch in number if ch.isdigit() or ch == "+")
    if digits.startswith("0") and not digits.startswith("00"):
        digits = "+44" + digits[1:]
    return f"tel:{digits}" if digits else ""


def html_source(html: str, width: int = HTML_WIDTH) -> str:
    """HTML as a part's source: plain ASCII (character references) in lines of at most
    WIDTH where it can, broken at spaces (where HTML sees no difference), so it goes 7bit."""
    ascii_only = html.encode("ascii", "xmlcharrefreplace").decode("ascii")
    lines = ascii_only.split("\n")
    return "\n".join(part for line in lines for part in fill_line(line, width, dates=False))
