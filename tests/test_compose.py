"""What we send: no header injection from customer text, robots told not to answer, HTML escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from mailbot.config import load_settings
from mailbot.correspondence import specimen_case, specimens
from mailbot.mail.compose import Letter, compose, new_message_id, unsendable
from mailbot.store.db import OUR_MESSAGE_IDS
from mailbot.templating import Templates
from tests.test_install import serverless_config

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def sent(letter: Letter) -> bytes:
    return compose(
        letter,
        from_address="complaints@provider.example",
        from_name="Complaints",
        message_id="<mailbot.1@provider.example>",
        date=NOW,
        kind="acknowledgement",
    )


def test_crlf_in_a_customer_name_or_subject_cannot_add_headers() -> None:
    raw = sent(
        Letter(
            to_address="eve@example.net",
            to_name="Eve\r\nBcc: victim@example.org",
            subject="[CMP-1] Hi\r\nBcc: victim@example.org\nX-Evil: 1",
            text="hello",
        )
    )
    message = message_from_bytes(raw)
    assert message.get_all("Bcc") is None and message.get_all("X-Evil") is None
    assert "victim@example.org" not in (message["To"] or "").split(",")[1:]


def test_a_very_long_subject_is_cut_and_folded() -> None:
    raw = sent(Letter(to_address="a@example.net", to_name="A", subject="x" * 5000, text="t"))
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert len(str(message_from_bytes(raw, policy=default)["Subject"])) <= 250


def test_automated_mail_tells_robots_not_to_answer() -> None:
    message = message_from_bytes(
        sent(Letter(to_address="a@example.net", to_name="A", subject="s", text="t"))
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-Mailbot-Loop"] == "complaints@provider.example"


def test_html_letters_escape_what_customers_wrote(tmp_path: Path) -> None:
    settings = load_settings(serverless_config(tmp_path), environ={})
    templates = Templates("Europe/London")
    case = specimen_case(settings)
    case.customer_name, case.subject = "<script>alert(1)</script>", "<b>bold</b> & more"
    [context] = [c for kind, c in specimens(settings, templates, case) if kind == "acknowledgement"]
    _, html = templates.letter("acknowledgement", context)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp;" in html


def test_our_message_ids_start_as_the_bounce_lookup_expects() -> None:
    # a bounce naming no such id is not looked up in the outbox at all
    assert new_message_id("provider.example").startswith(OUR_MESSAGE_IDS)


def test_a_non_ascii_address_is_written_in_utf8_and_a_broken_one_refused() -> None:
    raw = sent(Letter(to_address="jörg@müller.example", to_name="Jörg", subject="s", text="t"))
    assert "<jörg@müller.example>".encode() in raw  # RFC 6532: sent with SMTPUTF8
    assert unsendable("jörg@müller.example") == ""
    for broken in ("jörg müller@example.net", "a\u0085b@example.net", "no-at-sign", "a@b@c"):
        assert unsendable(broken), broken


def test_a_line_starting_with_from_or_a_dot_reaches_the_customer_as_written() -> None:
    # an mbox writer would make "From " ">From ", a relay that does not dot-stuff drops the
    # "."; a soft break can start a line too, and b2a_qp writes 78 columns for a 75-column
    # line ending in a space
    text = "\n".join(
        [
            "Café opens at nine.",
            "From here on we take care of it.",
            ".htaccess is a file name, and so is",
            "x" * 75 + ".well-known",
            "y" * 70 + "From you",
            "z" * 74 + " ",
            "." + "é" * 40,
        ]
    )
    raw = sent(Letter(to_address="a@example.net", to_name="A", subject="s", text=text))
    message = message_from_bytes(raw, policy=default)
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    body = raw.split(b"\r\n\r\n", 1)[1]
    for line in body.split(b"\r\n"):
        assert not line.startswith((b"From ", b".")), line
        assert len(line) <= 76 and not line.endswith((b" ", b"\t")), line
    assert message.get_content().replace("\r\n", "\n") == text + "\n"
