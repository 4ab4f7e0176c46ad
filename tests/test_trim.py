"""Reply trimming: the corpus of real replies, Outlook and Gmail HTML replies, staff commands."""

from __future__ import annotations

import re
from html import escape

from mailbot.mail.html_text import html_to_text
from mailbot.mail.trim import trim_reply
from tests.corpus import corpus_dir, corpus_files

TRIMMER = "email_reply_trimmer/test"
REQUIRED_EXACT_MATCH_RATE = 0.90


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _html_to_text(html: str) -> str:
    """As the intake converts HTML replies before trimming them."""
    return html_to_text(html)


def test_corpus_replies_are_trimmed_to_their_new_part() -> None:
    emails = corpus_files(f"{TRIMMER}/emails")
    trimmed = corpus_dir() / TRIMMER / "trimmed"
    failing = [
        email.stem
        for email in emails
        if _normalised(trim_reply(email.read_text(encoding="utf-8")))
        != _normalised((trimmed / email.name).read_text(encoding="utf-8"))
    ]
    rate = (len(emails) - len(failing)) / len(emails)
    print(f"\ntrim_reply exact match: {len(emails) - len(failing)}/{len(emails)} = {rate:.3f}")
    assert rate >= REQUIRED_EXACT_MATCH_RATE, f"rate {rate:.3f}; failing: {failing}"


OUTLOOK_HTML_REPLY = """\
<html><body>
<div>Dear Ms Customer,</div>
<div>We have refunded the kettle in full.</div>
<div>#resolve Refund issued</div>
<div>Kind regards,<br>Sam Staff</div>
<div id="appendonsend"></div>
<hr style="display:inline-block;width:98%">
<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri" style="font-size:11pt">
<b>From:</b> Jane Customer &lt;jane@example.com&gt;<br>
<b>Sent:</b> Monday, 3 March 2025 10:12<br>
<b>To:</b> Complaints &lt;complaints@shop.example&gt;<br>
<b>Subject:</b> Re: [Case 2025-0042] Broken kettle</font></div>
<div>The kettle you sold me broke after two days. I want a refund.</div>
</body></html>
"""

OUTLOOK_TEXT_REPLY = """\
Dear Ms Customer,

We have refunded the kettle in full.

#resolve Refund issued

________________________________
From: Jane Customer <jane@example.com>
Sent: Monday, 3 March 2025 10:12
To: Complaints <complaints@shop.example>
Subject: Re: [Case 2025-0042] Broken kettle

The kettle you sold me broke after two days. I want a refund.
"""

GMAIL_HTML_REPLY = """\
<div dir="ltr">Hello Jane,<div><br></div><div>We will call you tomorrow.</div>
<div>#note Customer prefers a phone call</div></div><br>
<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 3 Mar 2025 at 10:12,
Jane Customer &lt;<a href="mailto:jane@example.com">jane@example.com</a>&gt; wrote:<br></div>
<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">
<div dir="ltr">The kettle you sold me broke after two days.<br>I want a refund.</div>
</blockquote></div>
"""


def test_outlook_html_reply_loses_the_embedded_message() -> None:
    trimmed = trim_reply(_html_to_text(OUTLOOK_HTML_REPLY))
    # one line a <div>, as the HTML shows it (no blank line between them)
    assert trimmed.splitlines() == [
        "Dear Ms Customer,",
        "We have refunded the kettle in full.",
        "#resolve Refund issued",
        "Kind regards,",
        "Sam Staff",
    ]


def test_outlook_text_reply_is_cut_at_the_underscore_line() -> None:
    assert trim_reply(OUTLOOK_TEXT_REPLY) == (
        "Dear Ms Customer,\n\nWe have refunded the kettle in full.\n\n#resolve Refund issued"
    )


def test_gmail_html_reply_loses_attribution_and_quote() -> None:
    trimmed = trim_reply(_html_to_text(GMAIL_HTML_REPLY))
    assert _normalised(trimmed) == (
        "Hello Jane, We will call you tomorrow. #note Customer prefers a phone call"
    )
    assert "wrote" not in trimmed
    assert "kettle" not in trimmed


def test_attribution_in_another_language_is_removed() -> None:
    reply = (
        "Merci, c'est noté.\n\nLe 3 mars 2025 à 10:12, Jane <jane@example.com> a écrit :\n> Bonjour"
    )
    assert trim_reply(reply) == "Merci, c'est noté."


def test_signature_after_dash_dash_space_is_removed() -> None:
    assert trim_reply("Refund sent.\n\n-- \nSam Staff\nComplaints team") == "Refund sent."


def test_mobile_signature_is_removed() -> None:
    assert trim_reply("Done, refunded.\n\nSent from my iPhone") == "Done, refunded."


def test_command_lines_in_the_new_part_are_kept() -> None:
    reply = (
        "#resolve Refund issued\n"
        "Refund of £25 issued today.\n"
        "#note Courier confirmed the damage\n"
        "###\n"
        "#\n"
        "\n"
        "On Mon, 3 Mar 2025 at 10:12, Jane Customer <jane@example.com> wrote:\n"
        "> I want a refund.\n"
    )
    assert trim_reply(reply).splitlines() == [
        "#resolve Refund issued",
        "Refund of £25 issued today.",
        "#note Courier confirmed the damage",
        "###",
        "#",
    ]


def test_reply_written_between_quotes_keeps_every_new_line() -> None:
    reply = (
        "On Mon, 3 Mar 2025 at 10:12, Jane Customer <jane@example.com> wrote:\n"
        "> Can I have a refund?\n"
        "\n"
        "Yes, it is on its way.\n"
        "#resolve Refund issued\n"
        "\n"
        "> And the delivery fee?\n"
        "\n"
        "That too.\n"
    )
    trimmed = trim_reply(reply)
    assert "#resolve Refund issued" in trimmed.splitlines()
    assert trimmed.endswith("That too.")


def test_text_that_only_mentions_writing_is_kept() -> None:
    reply = "The customer wrote to us twice:\n\nfirst about the kettle, then about the fee."
    assert trim_reply(reply) == reply


def test_blank_reply_trims_to_empty() -> None:
    assert trim_reply(" \r\n\r\n") == ""


def test_a_command_or_a_date_just_above_the_attribution_is_kept() -> None:
    attribution = "\n\nOn Mon, 23 Nov 2026 at 10:05, Complaints <c@provider.example> wrote:\n> x\n"
    assert trim_reply("Hello.\n#updates 3" + attribution) == "Hello.\n#updates 3"
    assert trim_reply("Engineer booked.\nSee you on 3 Dec" + attribution) == (
        "Engineer booked.\nSee you on 3 Dec"
    )


OUR_LETTER = (
    "----- Please reply above this line -----\n"
    "New complaint on case CMP-2026-000001.\n\n"
    "Customer: Alice Customer <alice@example.net>\n"
    '  - "#resolve SUMMARY": resolve the case with a summary\n'
)


def test_a_reply_is_cut_at_the_first_line_of_our_letter_however_it_was_quoted() -> None:
    new = "Thanks, I am looking into it."
    pasted = f"{new}\n\n" + "\n".join(line.strip() for line in OUR_LETTER.splitlines())
    footer = "\n\nThis email and any attachments are confidential to Provider Ltd."
    quoted = (
        f"{new}\n\nOn Mon, 23 Nov 2026 at 10:05, Complaints <c@provider.example> wrote:\n"
        + "\n".join(f"> {line}" for line in OUR_LETTER.splitlines())
        + footer
    )
    # html2text escapes the dashes that start a paragraph (as \-----); a client quotes them
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in OUR_LETTER.splitlines())
    html = f"<div>{new}</div><blockquote>{paragraphs}</blockquote><p>{footer}</p>"
    for reply in (pasted, quoted, _html_to_text(html)):
        assert trim_reply(reply) == new, reply
