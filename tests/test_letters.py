"""Every letter to a customer: both parts saying the same facts, 72 columns, readable HTML."""

from __future__ import annotations

import html
import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailbot.config import Settings, load_settings
from mailbot.correspondence import (
    PERSON_LETTERS,
    letter_links,
    specimen_case,
    specimen_letters,
    specimens,
)
from mailbot.layout import WIDTH, fill_line
from mailbot.mail.compose import compose
from mailbot.mail.trim import split_sign_off
from mailbot.templating import Templates
from tests.test_install import serverless_config

CODE_URL = "https://www.claranet.co.uk/soho/complaints-code"
STAFF = """
[[staff]]
email = "dana@provider.example"
name = "Dana Lee"
role = "team_leader"
phone = "0161 496 0000"

[[staff]]
email = "morgan@provider.example"
name = "Morgan Manager"
role = "manager"
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = serverless_config(tmp_path)
    procedure = f'[procedure]\ncode_url = "{CODE_URL}"\n'
    auth = '[staff_auth]\ntrusted_authserv_ids = ["mx.provider.example"]\n'
    config.write_text(config.read_text() + procedure + auth + STAFF)
    return load_settings(config, environ={})


def sent(settings: Settings) -> dict[str, EmailMessage]:
    """Every letter to a customer as its bytes would go, read back as a client reads them."""
    templates = Templates("Europe/London", links=letter_links(settings))
    out = {}
    for kind, letter in specimen_letters(settings, templates).items():
        if kind in PERSON_LETTERS:
            raw = compose(
                letter,
                from_address="complaints@provider.example",
                from_name="Claranet SOHO complaints team",
                message_id="<mailbot.1@provider.example>",
                date=specimen_case(settings).received_at,
                kind=kind,
            )
            message = message_from_bytes(raw, policy=default)
            assert isinstance(message, EmailMessage)
            out[kind] = message
    return out


class Page(HTMLParser):
    """What a browser would see in a letter's HTML: its words, headings, links, resources."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.headings: list[str] = []
        self.hrefs: list[str] = []
        self.fetches: list[str] = []  # anything that would load something from elsewhere
        self.lang = ""
        self.title = ""
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self._in.append(tag)
        if tag == "html":
            self.lang = found.get("lang") or ""
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.headings.append(tag)
        if tag == "a":
            self.hrefs.append(found.get("href") or "")
        if tag in ("img", "script", "link", "iframe", "object", "embed", "video", "audio"):
            self.fetches.append(tag)
        if any(name in ("src", "srcset", "background") for name, _ in attrs):
            self.fetches.append(f"{tag} {attrs}")

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        where = self._in[-1] if self._in else ""
        if where == "title":
            self.title += data
        elif where == "style":
            if "url(" in data or "@import" in data:
                self.fetches.append("style url")
        else:
            self.words.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.words).split())


def parts(message: EmailMessage) -> tuple[str, Page]:
    plain, markup = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(markup, EmailMessage)
    page = Page()
    page.feed(markup.get_content())
    return plain.get_content(), page


def words(text: str) -> str:
    """TEXT as words, whatever lines it was broken into (a quote's too)."""
    return " ".join(text.replace("\n> ", "\n").split())


def facts(settings: Settings) -> dict[str, list[str]]:
    """What each letter must say (PROCEDURE.md, issue 16), in the sample case's words."""
    case = specimen_case(settings)
    adr = settings.adr_scheme
    scheme = [
        adr.name,
        adr.website,
        adr.phone,
        adr.email,
        adr.address,
        "free for you to use and independent of Claranet SOHO",
        "If you accept its decision, we must do what it says; you do not have to accept it",
        "within 12 months of the date of this letter",
        f"quote your complaint reference, {case.ref}",
    ]
    adr_date = "Friday 15 January 2027"
    rights = [adr.name, adr.website, adr.phone, adr.email, adr_date]
    signed = ["Yours sincerely,", "Dana Lee", "Team Leader, Claranet SOHO complaints team"]
    return {
        "acknowledgement": [
            case.ref,
            'We understand your complaint to be about: "My broadband keeps dropping"',
            "reply to you by Monday 23 November 2026 at 16:00",
            CODE_URL,
            "in another format",
            "extra support",
            *rights,
            *signed,
        ],
        "update": [
            "On Tuesday 24 November 2026, Dana Lee wrote to you:",
            "Our engineer found a fault at the street cabinet this morning",
            "Dana Lee (Team Leader) is handling your complaint",
            "We will write to you again by Thursday 3 December 2026 at 16:00",
            *rights,
            *signed,
        ],
        "resolution": [
            "We are glad to tell you that we have now resolved it",
            "We found a fault on the line at the street cabinet",
            "reply to this email within 28 days and we will reopen it",
            f"refer your complaint to {adr.name}",
            f"from {adr_date}",
            *signed,
        ],
        "adr_notice": ["It is now 8 weeks since you made your complaint", *scheme, *signed],
        "deadlock_letter": [
            "Deadlock letter",
            'You complained to us on Friday 20 November 2026 about "My broadband keeps dropping"',
            "My broadband has been dropping every evening since 10 November",
            "We cannot offer the further compensation you asked for",
            "this is our final response",
            *scheme,
            *signed,
        ],
        "escalation_notice": [
            "Morgan Manager (Complaints Manager) is now handling your complaint",
            "will be in touch by Thursday 3 December 2026 at 16:00",
            *rights,
            "Morgan Manager",
        ],
        "deadlock_refusal": ["We are not issuing one at this stage", *rights, *signed],
        "staff_reply": [
            "Our engineer found a fault at the street cabinet",
            "Kind regards,",
            case.ref,
        ],
        "too_large": ["30.1 MB", "25 MB", "Claranet SOHO complaints team"],
        "merge_notice": [
            f"Please use this reference from now on: {case.ref}",
            f"it replaces {case.ref[:-6]}000043",
            "Your complaint keeps the date we first received it, Friday 20 November 2026",
            *signed,
        ],
        "subject_access_extended": [
            "On Friday 20 November 2026 you asked us for a copy of the personal data",
            "up to 2 more months",
            "six years of calls and letters",
            "by Saturday 20 February 2027 at the latest",
            "Information Commissioner's Office",
            *signed,
        ],
    }


def test_every_letter_to_a_customer_has_a_text_part_and_an_html_part(settings: Settings) -> None:
    letters = sent(settings)
    assert set(letters) == set(PERSON_LETTERS)
    for kind, message in letters.items():
        assert message.get_content_type() == "multipart/alternative", kind
        types = [part.get_content_type() for part in message.iter_parts()]
        assert types == ["text/plain", "text/html"], kind


def test_both_parts_of_every_letter_say_the_facts_it_must_carry(settings: Settings) -> None:
    must = facts(settings)
    for kind, message in sent(settings).items():
        text, page = parts(message)
        for fact in must[kind]:
            assert words(fact) in words(text), (kind, "text", fact)
            assert words(fact) in page.text, (kind, "html", fact)


def test_the_html_part_says_word_for_word_what_the_text_part_says(settings: Settings) -> None:
    for kind, message in sent(settings).items():
        text, page = parts(message)
        read = [
            line.lstrip().removeprefix("> ").removeprefix("- ").removeprefix(">")
            for line in text.splitlines()
            if line.strip("=-")  # a heading's underline is how text shows a heading
        ]
        shown = page.text.removeprefix("Claranet SOHO complaints team ")  # the letterhead
        assert words("\n".join(read)) == shown, kind


def test_the_text_part_keeps_to_72_columns_and_the_html_part_to_7bit_lines(
    settings: Settings,
) -> None:
    for kind, message in sent(settings).items():
        text, _ = parts(message)
        long = [line for line in text.splitlines() if len(line) > WIDTH]
        assert not long, (kind, long)
        [plain, markup] = message.iter_parts()
        assert plain["Content-Transfer-Encoding"] in ("7bit", "quoted-printable"), kind
        assert markup["Content-Transfer-Encoding"] == "7bit", kind  # no QP cost, no =3D


def test_html_letters_have_a_language_a_title_headings_in_order_and_nothing_from_elsewhere(
    settings: Settings,
) -> None:
    for kind, message in sent(settings).items():
        _, page = parts(message)
        assert page.lang == "en-GB", kind
        assert words(page.title) and words(page.title) in page.text, kind
        assert page.headings[0] == "h1" and page.headings.count("h1") == 1, kind
        assert set(page.headings) <= {"h1", "h2"}, kind  # no level skipped
        assert not page.fetches, (kind, page.fetches)
        assert all(h.startswith(("https://", "mailto:", "tel:")) for h in page.hrefs), kind


def test_the_schemes_website_phone_and_email_are_links(settings: Settings) -> None:
    _, page = parts(sent(settings)["adr_notice"])
    assert "https://www.ombudsman-services.org" in page.hrefs
    assert "tel:+443304401614" in page.hrefs
    assert "mailto:osenquiries@os-communications.org" in page.hrefs


def test_the_letters_kind_is_its_first_line_and_its_titles(settings: Settings) -> None:
    for kind, message in sent(settings).items():
        text, page = parts(message)
        first = text.splitlines()[0]
        assert words(page.title).startswith(first), kind
        assert kind == "too_large" or specimen_case(settings).ref in page.title, kind


def test_filling_never_breaks_a_reference_a_date_a_url_or_a_phone_number(
    settings: Settings,
) -> None:
    templates = Templates("Europe/London", links=letter_links(settings))
    case = specimen_case(settings)
    case.resolution_summary = (
        "An engineer from our network team repaired the line at the cabinet on 27 November "
        f"2026 and the details are at {CODE_URL}/repairs/2026/CMP-2026-000042-line-fault, "
        f"reference {case.ref}; call Dana on 0161 496 0000 with anything else, any day."
    ) * 3
    [context] = [c for kind, c in specimens(settings, templates, case) if kind == "resolution"]
    text, _ = templates.letter("resolution", context)
    lines = text.splitlines()
    for whole in (
        "27 November 2026",
        f"{CODE_URL}/repairs/2026/CMP-2026-000042-line-fault,",
        case.ref,
        "0161 496 0000",
        "Friday 15 January 2027",
    ):
        assert any(whole in line for line in lines), whole
        assert text.count(whole) == sum(line.count(whole) for line in lines), whole


def test_a_word_longer_than_a_line_stands_alone_and_lists_and_quotes_keep_their_marks() -> None:
    url = "https://example.org/" + "x" * 80
    assert fill_line(f"see {url} now") == ["see", url, "now"]
    item = fill_line("- " + "word " * 30)
    assert item[0].startswith("- ") and all(line.startswith("  ") for line in item[1:])
    quote = fill_line("> " + "word " * 30)
    assert all(line.startswith("> ") for line in quote)
    assert all(len(line) <= WIDTH for line in item + quote)


def test_a_customers_words_are_escaped_in_the_html(settings: Settings) -> None:
    templates = Templates("Europe/London")
    case = specimen_case(settings)
    case.subject = '<img src="https://tracker.example/x.png"> & "quotes"'
    [context] = [c for kind, c in specimens(settings, templates, case) if kind == "update"]
    _, markup = templates.letter("update", context)
    page = Page()
    page.feed(markup)
    assert not page.fetches
    assert html.unescape("&lt;img") in page.text


@pytest.mark.parametrize(
    ("reply", "words", "sign_off"),
    [
        ("Kind regards, Morgan", "", "Kind regards, Morgan"),
        ("Kind regards,\nMorgan", "", "Kind regards,\nMorgan"),
        (
            "The engineer comes on Monday.\n\nThanks,\nMorgan\nComplaints Manager",
            "The engineer comes on Monday.",
            "Thanks,\nMorgan\nComplaints Manager",
        ),
        (
            "The engineer comes on Monday.\nMorgan Manager",
            "The engineer comes on Monday.",
            "Morgan Manager",
        ),
        (
            "Thanks for your patience, the line is fixed.",
            "Thanks for your patience, the line is fixed.",
            "",
        ),
        ("Best wishes\n\n> On Monday you wrote:\n> hello", "", "Best wishes"),
    ],
)
def test_a_staff_members_own_sign_off_is_told_from_their_words(
    reply: str, words: str, sign_off: str
) -> None:
    split = split_sign_off(reply, "Morgan Manager")
    assert (split.words, split.sign_off) == (words, sign_off)


def test_every_letter_to_staff_stays_plain_text(settings: Settings) -> None:
    templates = Templates("Europe/London")
    for kind, letter in specimen_letters(settings, templates).items():
        if kind not in PERSON_LETTERS:
            assert letter.html is None, kind
            assert not re.search(r"^=+$", letter.text, re.MULTILINE), kind
