"""HTML mail -> the plain text a person reads in it (inscriptis, set up for mail)."""

from __future__ import annotations

import bisect
import copy
import html
import re
from typing import Any

import lxml.etree
import lxml.html
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_engine import Inscriptis
from inscriptis.html_properties import Display
from inscriptis.model.canvas.block import Block
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from inscriptis.model.tag import CustomHtmlTagHandlerMapping

# What Outlook writes for the <hr> above a quoted message in its own plain-text version.
_RULE = "_" * 32

# A browser's defaults, but tables read as lines: mail lays out with nested tables, and
# inscriptis pads table cells to a grid (whole screens of spaces in a newsletter).
_CSS = {
    **CSS_PROFILES["strict"],
    "table": HtmlElement(display=Display.block),
    "tr": HtmlElement(display=Display.block),
    "td": HtmlElement(display=Display.inline, suffix=" "),
    "th": HtmlElement(display=Display.inline, suffix=" "),
    "hr": HtmlElement(display=Display.block),
}
_TABLE_TAGS = ("table", "tr", "td", "th")


def _ignore(*_: Any) -> None:
    """Replaces inscriptis' own table layout: cells are written as they come."""


_CONFIG = ParserConfig(
    css=_CSS,
    annotation_rules={"blockquote": ["quote"]},
    custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
        start_tag_mapping=dict.fromkeys(_TABLE_TAGS, _ignore),
        end_tag_mapping=dict.fromkeys(_TABLE_TAGS, _ignore),
    ),
)


def merge_normal_text(block: Block, text: str) -> None:
    """inscriptis' Block.merge_normal_text, a run of white space at a time, not a character.

    Its loop over each character was a third of the time an HTML mail took to read; this
    writes the same text into the block (tests/test_bodies.py compares the two).
    """
    words = text.split()  # str.split() and str.isspace() know the same white space
    if not words:
        if not text or block.collapsable_whitespace:
            return
        normalized, block.collapsable_whitespace = " ", True
    else:
        lead = " " if text[0].isspace() and not block.collapsable_whitespace else ""
        trail = " " if text[-1].isspace() else ""
        normalized, block.collapsable_whitespace = lead + " ".join(words) + trail, bool(trail)
    merged = html.unescape(normalized if block._content else block.prefix.first + normalized)
    block._content += merged
    block.idx += len(merged)


INSCRIPTIS_MERGE_NORMAL_TEXT = Block.merge_normal_text
Block.merge_normal_text = merge_normal_text

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")
# lxml refuses NUL and the other C0 controls; a browser shows nothing for them either.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BLANK_LINES = re.compile(r"\n{3,}")
_TAG = re.compile(r"<[^>]*>")


def html_to_text(markup: str) -> str:
    """MARKUP as text: entities as characters, paragraphs and line breaks kept, no Markdown,
    links as "text (url)", quoted blocks as "> " lines, <hr> as a rule; "" for no text."""
    markup = _CONTROLS.sub("", _XML_DECLARATION.sub("", markup, count=1)).strip()
    if not markup:
        return ""
    # huge_tree: past 256 levels libxml2 would drop the rest of the document, text and all
    parser = lxml.html.HTMLParser(huge_tree=True)
    try:
        tree = lxml.html.document_fromstring(markup, parser=parser)
    except (lxml.etree.ParserError, ValueError):  # no element at all: "&nbsp;", a comment
        tree = lxml.html.document_fromstring(f"<pre>{markup}</pre>", parser=parser)
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        return _words(markup)  # nested past even that: no layout to keep, only the words
    _spell_out_links(tree)
    for rule in tree.iter("hr"):
        rule.text = _RULE
    try:
        engine = Inscriptis(tree, _config())
    except RecursionError:  # nested deeper than Python's stack
        return _words(markup)
    text = _quoted(engine.get_text(), [(a.start, a.end) for a in engine.get_annotations()])
    lines = [line.rstrip() for line in text.split("\n")]
    # "-- " is the signature delimiter (RFC 3676); HTML's white-space rules eat its space.
    lines = ["-- " if line == "--" else line for line in lines]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def _config() -> ParserConfig:
    """_CONFIG for one conversion: inscriptis hangs its canvas on the profile's <body>."""
    config = copy.copy(_CONFIG)
    config.css = {**_CONFIG.css, "body": _CONFIG.css["body"].__copy__()}
    return config


def _words(markup: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", markup)).split())


def _spell_out_links(tree: lxml.html.HtmlElement) -> None:
    """Write each link's target after its text, unless the text already says it."""
    for link in tree.iter("a"):
        target = (link.get("href") or "").strip()
        if not target or target.startswith(("#", "javascript:")):
            continue
        target = target.removeprefix("mailto:")
        text = " ".join(link.text_content().split())
        if text and _bare(text) != _bare(target):
            link.tail = f" ({target}){link.tail or ''}"


def _bare(url: str) -> str:
    return re.sub(r"^(?:mailto:|https?://)", "", url.lower()).rstrip("/")


def _quoted(text: str, spans: list[tuple[int, int]]) -> str:
    """Each line inside a blockquote starts with "> ", once per level, as a mail client quotes."""
    if not spans:
        return text
    begins, ends = sorted(begin for begin, _ in spans), sorted(end for _, end in spans)
    lines, start = [], 0
    for line in text.split("\n"):
        depth = bisect.bisect_right(begins, start) - bisect.bisect_right(ends, start)
        lines.append(f"{'> ' * depth}{line}".rstrip() if depth else line)
        start += len(line) + 1
    return "\n".join(lines)
