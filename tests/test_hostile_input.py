"""Hostile mail through Intake.receive: thousands of mutated and generated messages.

Every message, however broken, must be stored byte for byte, end on a case or set aside
with a reason (never left "received"), keep its attachments under safe names, and never
let its content inject a header into a letter mailbot queues.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, func, select

from mailbot.app import App, build_app
from mailbot.config import load_settings
from mailbot.mail.fingerprint import content_sha256
from mailbot.store import db
from mailbot.store.models import Attachment, Disposition, Inbound, Outbound, OutboundStatus
from tests.conftest import write_config
from tests.corpus import corpus_files

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

PEOPLE = [path.read_bytes() for path in corpus_files("mail-parser/tests/mails")]
BOUNCES = [path.read_bytes() for path in corpus_files("flufl.bounce/flufl/bounce/tests/data")]

OUTBOUND_HEADERS = frozenset(
    name.lower()
    for name in (
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Reply-To",
        "Auto-Submitted",
        "Precedence",
        "X-Auto-Response-Suppress",
        "X-Mailbot-Loop",
        "X-Mailbot-Kind",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)
SETTLED = {Disposition.CASE, Disposition.IGNORED, Disposition.QUARANTINED}
_HEADER_LINE = re.compile(rb"[!-9;-~]+:")

HYPOTHESIS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the app under test: one SQLite file per test -------------------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mailbot-hostile-") as name:
        yield Path(name)


def _app_for(workdir: Path, name: str) -> App:
    folder = workdir / name
    folder.mkdir()
    config = folder / "config.toml"
    write_config(config, imap_port=1, user="hostile", smtp_port=1, db=folder / "mailbot.db")
    return build_app(load_settings(config, environ={}), clock=lambda: NOW)


@pytest.fixture(scope="module")
def mutated_app(workdir: Path) -> Iterator[App]:
    app = _app_for(workdir, "mutated")
    yield app
    app.engine.dispose()


@pytest.fixture(scope="module")
def generated_app(workdir: Path) -> Iterator[App]:
    app = _app_for(workdir, "generated")
    yield app
    app.engine.dispose()


# -- the property ---------------------------------------------------------------------------


def _check_outbound(raw: bytes) -> None:
    """RAW is one message we queued: parseable, only our headers, no bare CR or LF in them."""
    end = raw.find(b"\r\n\r\n")
    assert end > 0, raw[:400]
    block = raw[: end + 2]
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", block) is None, f"bare CR/LF in headers: {block!r}"
    names: list[str] = []
    for line in block[:-2].split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            assert names, f"continuation line first: {block!r}"
            continue
        assert _HEADER_LINE.match(line), f"not a header line: {line!r} in {block!r}"
        names.append(line.split(b":", 1)[0].decode("ascii").lower())
    assert set(names) <= OUTBOUND_HEADERS, f"injected headers {set(names) - OUTBOUND_HEADERS}"
    assert len(names) == len(set(names)), f"repeated headers: {names}"

    message = email.message_from_bytes(raw, policy=email.policy.default)
    reparsed = [key.lower() for key in message]
    assert reparsed == names, (reparsed, names)
    for part in message.walk():
        assert {key.lower() for key in part} <= OUTBOUND_HEADERS, list(part)
        for key, value in part.items():
            assert "\r" not in str(value) and "\n" not in str(value), (key, value)


def check_receive(app: App, raw: bytes) -> None:
    """Feed RAW to the intake and check everything it stored and queued."""
    with Session(app.engine) as session:
        last_outbound = session.exec(select(func.max(Outbound.id))).one() or 0

    outcome = app.intake.receive(raw, NOW, "hypothesis")

    key = content_sha256(raw)
    with Session(app.engine) as session:
        rows = list(
            session.exec(
                select(Inbound).where(
                    Inbound.content_sha256 == key, Inbound.message_id == outcome.message_id
                )
            )
        )
        assert len(rows) == 1, f"{len(rows)} rows stored for one message"
        [row] = rows
        if row.sha256 != hashlib.sha256(raw).hexdigest():  # another delivery of one stored
            assert outcome.duplicate, "a message that differs in more than trace headers lost"
        else:
            assert db.raw_bytes(session, row.id) == raw, "raw bytes not kept exactly"
            assert row.size == len(raw)
        assert row.disposition in SETTLED, f"left {row.disposition}: {row.reason}"
        assert outcome.disposition == row.disposition
        if row.disposition is Disposition.CASE:
            assert row.case_id is not None
        else:
            assert row.case_id is None
            assert row.reason.strip(), f"{row.disposition} without a reason"
            # a crash caught by the last-resort handler is a bug, not a verdict on the input
            assert not row.reason.startswith("processing failed"), row.reason

        for attachment in session.exec(select(Attachment).where(Attachment.inbound_id == row.id)):
            name = attachment.filename
            assert name not in ("", ".", ".."), name
            assert not {"/", "\\", "\x00"} & set(name), repr(name)

        for outbound in session.exec(
            select(Outbound).where(col(Outbound.id) > last_outbound).order_by(col(Outbound.id))
        ):
            if outbound.status is OutboundStatus.HELD:  # never sent: it may have no bytes
                assert outbound.last_error.strip(), "a letter held back without a reason"
                continue
            _check_outbound(outbound.raw)


# -- strategy 1: real mail, mutated ---------------------------------------------------------

NASTY_SNIPPETS = [
    b"\x00",
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\r\n",
    b"\n\r",
    b"\xff\xfe\x80\xc3",
    b"=?",
    b"?=",
    b"=?utf-8?B?",
    b"=?x-unknown?Q?=FF=00?=",
    b"=?utf-8?B?AAAA====?=",
    b"\r\n--",
    b"\n--boundary\n",
    b"\r\n--\r\n",
    b"--=_Part_0--\r\n",
    b"\r\n\r\n",
    b"\tfolded",
    b"\r\n ",
    b"Content-Type: multipart/mixed; boundary=\r\n",
    b'Content-Type: text/plain; charset="\xff"\r\n',
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Disposition: attachment; filename=../../etc/passwd\r\n",
    b"From: <>\r\n",
    b"Message-ID: <\xff@x>\r\n",
    b"X-Mailbot-Loop: complaints@provider.example\r\n",
    b"Subject: [CMP-2026-000001] again\r\n",
    b"begin 644 x\r\n",
    b"<html><body><script>",
]

GARBAGE_CHARSETS = [
    b"x-unknown",
    b"\xff\xfe",
    b"",
    b'"',
    b"utf-7",
    b"utf-16",
    b"utf-32-le",
    b"idna",
    b"rot13",
    b"base64",
    b"zlib",
    b"uu",
    b"hex",
    b"punycode",
    b"undefined",
    b"mbcs",
    b"cp65001",
    b"=?utf-8?q?x?=",
    b"../../etc",
    b"a" * 300,
]

Mutation = Callable[[st.DrawFn, bytes], bytes]


def _index(draw: st.DrawFn, data: bytes) -> int:
    return draw(st.integers(0, len(data)))


def _span(draw: st.DrawFn, data: bytes, most: int = 65536) -> tuple[int, int]:
    start = _index(draw, data)
    return start, min(len(data), start + draw(st.integers(0, most)))


def _truncate(draw: st.DrawFn, data: bytes) -> bytes:
    return data[: _index(draw, data)]


def _delete(draw: st.DrawFn, data: bytes) -> bytes:
    start, end = _span(draw, data)
    return data[:start] + data[end:]


def _duplicate(draw: st.DrawFn, data: bytes) -> bytes:
    start, end = _span(draw, data, most=8192)
    at = _index(draw, data)
    return data[:at] + data[start:end] + data[at:]


def _swap(draw: st.DrawFn, data: bytes) -> bytes:
    a, b = sorted((_index(draw, data), _index(draw, data)))
    c, d = sorted((_index(draw, data), _index(draw, data)))
    (a, b), (c, d) = sorted([(a, b), (c, d)])
    if b > c:  # overlapping: swap [a, c) and [c, d)
        b = c
    return data[:a] + data[c:d] + data[b:c] + data[a:b] + data[d:]


def _insert(draw: st.DrawFn, data: bytes) -> bytes:
    snippet = draw(
        st.sampled_from(NASTY_SNIPPETS)
        | st.binary(min_size=1, max_size=40)
        | st.lists(st.sampled_from(NASTY_SNIPPETS), min_size=1, max_size=6).map(b"".join)
    )
    at = _index(draw, data)
    return data[:at] + snippet + data[at:]


def _drop_separator(draw: st.DrawFn, data: bytes) -> bytes:
    found = re.search(rb"\r?\n\r?\n", data)
    if found is None:
        return data
    glue = draw(st.sampled_from([b"", b"\n", b"\r\n", b" "]))
    return data[: found.start()] + glue + data[found.end() :]


def _garbage_charset(draw: st.DrawFn, data: bytes) -> bytes:
    garbage = draw(st.sampled_from(GARBAGE_CHARSETS) | st.binary(max_size=20))
    everywhere = draw(st.booleans())
    return re.sub(
        rb'charset\s*=\s*"?[^";\s]*"?',
        lambda _: b'charset="' + garbage + b'"',
        data,
        count=0 if everywhere else 1,
        flags=re.IGNORECASE,
    )


def _huge_header(draw: st.DrawFn, data: bytes) -> bytes:
    name = draw(st.sampled_from([b"Subject", b"X-Huge", b"From", b"References", b"To"]))
    unit = draw(st.sampled_from([b"a", b"=?utf-8?B?w6k=?= ", b"<x@y> ", b"\xe9", b"a\r\n "]))
    size = draw(st.sampled_from([1000, 20_000, 100_000]))
    line = name + b": " + unit * (size // len(unit)) + b"\r\n"
    return line + data if draw(st.booleans()) else _after_first_line(data, line)


def _after_first_line(data: bytes, line: bytes) -> bytes:
    end = data.find(b"\n") + 1
    return data[:end] + line + data[end:]


def _nested_multipart(draw: st.DrawFn, data: bytes) -> bytes:
    depth = draw(st.integers(1, 30))
    boundary = draw(st.sampled_from([b"", b'""', b"b", b"--", b"=_Part", b"\xff"]))
    headers = b"".join(
        b"Content-Type: multipart/mixed; boundary=" + boundary + str(n).encode() * (n % 2) + b"\r\n"
        for n in range(depth)
    )
    if draw(st.booleans()):
        return headers + data
    at = _index(draw, data)
    return data[:at] + b"\r\n" + headers + b"\r\n" + data[at:]


MUTATIONS: list[Mutation] = [
    _truncate,
    _delete,
    _duplicate,
    _swap,
    _insert,
    _insert,
    _drop_separator,
    _garbage_charset,
    _huge_header,
    _nested_multipart,
]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(PEOPLE) | st.sampled_from(BOUNCES))  # half each
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.sampled_from(MUTATIONS))(draw, data)
    return data


# -- strategy 2: messages built from nothing ------------------------------------------------

CRLF = b"\r\n"
MESSAGE_IDS = [f"<m{n}@customer.example>" for n in range(8)]
REFS = [f"CMP-2026-{n:06d}" for n in range(1, 6)]

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]),
    max_size=60,
)
_ascii = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=60)


def _enc(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


encoded_words = st.builds(
    lambda charset, coding, payload: b"=?" + charset + b"?" + coding + b"?" + payload + b"?=",
    st.sampled_from(
        [b"utf-8", b"x-unknown", b"iso-8859-1", b"gb2312", b"utf-16", b"", b"\xff", b"idna"]
    ),
    st.sampled_from([b"B", b"Q", b"b", b"q", b"X", b""]),
    st.sampled_from([b"w6k=", b"AAAA", b"=FF=00=0D=0A", b"_x_", b"!!!", b"", b"////", b"?"])
    | st.binary(max_size=20).filter(lambda b: b"?=" not in b),
)

header_values: st.SearchStrategy[bytes] = st.one_of(
    _text.map(_enc),
    _ascii.map(_enc),
    st.binary(max_size=80),
    encoded_words,
    st.lists(encoded_words | _text.map(_enc), min_size=1, max_size=5).map(b" ".join),
    st.builds(
        lambda a, sep, b: a + sep + b,
        _text.map(_enc),
        st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\n ", b"\r\nBcc: x@evil.example\r\n"]),
        _text.map(_enc),
    ),
    st.integers(300, 5000).map(lambda n: b"A" * n),
)

from_values: st.SearchStrategy[bytes] = st.one_of(
    st.sampled_from(
        [
            b"alice@customer.example",
            b"Alice <alice@customer.example>",
            b'"Smith, Bob" <bob@customer.example>',
            b'"a\\"quote" <q@customer.example>',
            b"bob@x <alice@y.example>",
            b"<>",
            b"no-at-sign",
            b"Name Only",
            b"<<a@b>>",
            b"a@b@c",
            b'"@" <@>',
            b"=?utf-8?B?QWxpY2UgPGFsaWNlQGN1c3RvbWVyLmV4YW1wbGU+?=",
            b"=?x-unknown?B?AAAA?= <u@customer.example>",
            b"\xe9l\xe8ve <eleve@customer.example>",
            b"MAILER-DAEMON@mx.example",
            b"tl@provider.example",
            b"Ann <agent@provider.example>",
            b"boss@provider.example",
            b"complaints@provider.example",
            b"a@customer.example, b@customer.example",
            b"group: a@x.example, b@y.example;",
            b'"ev\r\nil" <evil@customer.example>',
            b"evil@customer.example\r\nBcc: victim@example.com",
            b"J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbccher.example>",
            b"x" * 300 + b"@customer.example",
        ]
    ),
    header_values,
)

subject_values: st.SearchStrategy[bytes] = st.one_of(
    header_values,
    st.sampled_from(REFS).map(lambda ref: f"Re: [{ref}] more".encode()),
    st.sampled_from(REFS).map(lambda ref: f"[{ref}]\r\nBcc: x@evil.example".encode()),
    st.integers(1000, 100_000).map(lambda n: b"complaint " * (n // 10)),
    st.sampled_from([b"Out of office", b"Undelivered Mail Returned to Sender", b""]),
)

HEADER_NAMES = [
    b"Message-ID",
    b"In-Reply-To",
    b"References",
    b"Reply-To",
    b"To",
    b"Cc",
    b"Date",
    b"Return-Path",
    b"Auto-Submitted",
    b"Precedence",
    b"List-Id",
    b"X-Auto-Response-Suppress",
    b"Authentication-Results",
    b"MIME-Version",
    b"Content-Transfer-Encoding",
    b"X-Mailbot-Loop",
]

extra_headers = st.tuples(
    st.sampled_from(HEADER_NAMES)
    | st.binary(min_size=0, max_size=20).filter(lambda b: b":" not in b and b"\n" not in b),
    st.one_of(
        header_values,
        st.sampled_from(MESSAGE_IDS).map(str.encode),
        st.lists(st.sampled_from(MESSAGE_IDS), max_size=4).map(lambda ids: " ".join(ids).encode()),
        st.sampled_from(
            [
                b"mx.provider.example; dmarc=pass header.from=provider.example",
                b"mx.provider.example; dmarc=fail",
                b"evil.example; dmarc=pass header.from=provider.example",
                b";;;",
                b"Mon, 30 Feb 2026 25:61:61 +9999",
                b"Tue, 24 Nov 2026 10:00:00 -0000",
                b"auto-replied",
                b"bulk",
                b"<>",
            ]
        ),
    ),
)

FILENAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\system32\\cmd.exe",
    "con.txt",
    "\x00evil",
    "evil\x00.txt",
    "",
    ".",
    "..",
    "...",
    " . ",
    "/",
    "\\",
    ".bashrc",
    "a" * 300,
    "b" * 296 + ".pdf",
    "x." + "y" * 40,
    "résumé.pdf",
    "файл.doc",
    "文件.txt",
    "\u202etxt.exe",
    "name\r\nX-Injected: 1",
    "=?utf-8?B?Li4vLi4vZXRjL3Bhc3N3ZA==?=",
    "=?x-unknown?Q?=2E=2E=2F?=",
]

filenames = st.sampled_from(FILENAMES) | _text


def _param(name: str, style: int) -> bytes:
    """A filename parameter in one of the ways mail clients write (and mangle) it."""
    raw = name.encode("utf-8", "surrogatepass")
    if style == 0:
        return b'; filename="' + raw + b'"'
    if style == 1:
        return b"; filename=" + raw
    if style == 2:
        quoted = "".join(f"%{byte:02X}" for byte in raw).encode()
        return b"; filename*=utf-8''" + quoted
    if style == 3:
        return b'; name="' + raw + b'"'
    return b'; filename*0="' + raw[:5] + b'"; filename*1="' + raw[5:] + b'"'


LEAF_TYPES = [
    b"text/plain",
    b"text/html",
    b"application/octet-stream",
    b"image/png",
    b"message/delivery-status",
    b"text/rfc822-headers",
    b"application/x-unknown",
    b"text",
    b"",
    b"garbage/\xff",
]

TRANSFER_ENCODINGS = [None, b"7bit", b"8bit", b"base64", b"quoted-printable", b"x-uuencode", b"??"]

bodies = st.one_of(
    _text.map(_enc),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"<html><body><p>My broadband is down</p><script>x</script></body></html>",
            b"<html><body><table><tr><td>" * 50,
            b"aGVsbG8=",
            b"not base64 !!!",
            b"=E9=\r\n=ZZ",
            b"#note\r\n#resolve fixed\r\n#new x@y.example Evil\r\n",
            b"#new victim@customer.example Name\r\nBcc: x@evil.example\r\n",
            b"I want a deadlock letter now. My account number is 12345.",
            b"Final-Recipient: rfc822; x@y\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n",
            b"--\r\n--\r\n--b--\r\n",
        ]
    ),
    st.integers(1000, 50_000).map(lambda n: b"line of complaint text\r\n" * (n // 24)),
)


@st.composite
def leaf_parts(draw: st.DrawFn) -> bytes:
    content_type = draw(st.sampled_from(LEAF_TYPES))
    params = b""
    if draw(st.booleans()):
        params += b"; charset=" + draw(st.sampled_from([b"utf-8", *GARBAGE_CHARSETS]))
    headers = []
    if draw(st.booleans()):
        name = draw(filenames)
        style = draw(st.integers(0, 4))
        if draw(st.booleans()):
            disposition = draw(st.sampled_from([b"attachment", b"inline", b"ATTACHMENT", b"x"]))
            headers.append(b"Content-Disposition: " + disposition + _param(name, style))
        else:
            params += _param(name, style)
    elif draw(st.booleans()):
        headers.append(b"Content-Disposition: attachment")
    headers.insert(0, b"Content-Type: " + content_type + params)
    encoding = draw(st.sampled_from(TRANSFER_ENCODINGS))
    if encoding is not None:
        headers.append(b"Content-Transfer-Encoding: " + encoding)
    return CRLF.join(headers) + CRLF + CRLF + draw(bodies)


@st.composite
def multipart_parts(draw: st.DrawFn, children: st.SearchStrategy[bytes]) -> bytes:
    subtype = draw(
        st.sampled_from([b"mixed", b"alternative", b"report", b"related", b"digest", b"x"])
    )
    boundary = draw(st.sampled_from([b"b1", b"=_Part_0", b"", b"b1 b2", b"\xff", b"a" * 80]))
    declared = draw(st.sampled_from([boundary, boundary, b"other", b""]))
    params = b'; boundary="' + declared + b'"' if draw(st.booleans()) else b"; boundary=" + declared
    if subtype == b"report":
        params += b"; report-type=" + draw(st.sampled_from([b"delivery-status", b"x"]))
    parts = draw(st.lists(children, max_size=4))
    preamble = draw(st.sampled_from([b"", b"This is a MIME message.\r\n", b"--" + boundary]))
    body = preamble
    for part in parts:
        body += CRLF + b"--" + boundary + CRLF + part
    if draw(st.booleans()):
        body += CRLF + b"--" + boundary + b"--" + CRLF
    body += draw(st.sampled_from([b"", b"epilogue\r\n", b"--" + boundary + b"\r\n\r\nlost"]))
    return b"Content-Type: multipart/" + subtype + params + CRLF + CRLF + body


@st.composite
def rfc822_parts(draw: st.DrawFn, children: st.SearchStrategy[bytes]) -> bytes:
    inner_headers = b"From: " + draw(from_values) + CRLF + b"Subject: " + draw(header_values)
    disposition = draw(st.sampled_from([b"", b"Content-Disposition: attachment\r\n"]))
    return (
        b"Content-Type: message/rfc822\r\n"
        + disposition
        + CRLF
        + inner_headers
        + CRLF
        + draw(children)
    )


mime_parts = st.recursive(
    leaf_parts(),
    lambda children: multipart_parts(children) | rfc822_parts(children),
    max_leaves=8,
)


CUSTOMERS = [b"alice@customer.example", b"bob@customer.example", b"Carol@Customer.Example"]
STAFF_ADDRESSES = [b"tl@provider.example", b"agent@provider.example", b"boss@provider.example"]

display_names: st.SearchStrategy[bytes] = st.one_of(
    header_values,
    header_values.map(lambda name: b'"' + name + b'"'),
    st.sampled_from([b'"Smith, Bob"', b'"a\\"b"', b"=?utf-8?Q?Evil=0D=0ABcc:_x@y?=", b""]),
)

hostile_mailboxes = st.builds(
    lambda name, addr: name + b" <" + addr + b">",
    display_names,
    st.sampled_from(CUSTOMERS),
)

HARMLESS_NAMES = [b"To", b"Cc", b"Date", b"In-Reply-To", b"References", b"X-Anything"]

harmless_headers = st.tuples(
    st.sampled_from(HARMLESS_NAMES),
    st.one_of(
        header_values,
        st.lists(st.sampled_from(MESSAGE_IDS), max_size=4).map(lambda ids: " ".join(ids).encode()),
    ),
)

STAFF_COMMANDS = [
    b"#note",
    b"#resolve",
    b"#updates",
    b"#escalate",
    b"#vexatious",
    b"#out-of-scope",
    b"#deadlock",
    b"#deadlock refuse",
    b"#reopen",
    b"#new",
    b"#bogus",
]

staff_bodies = st.lists(
    st.one_of(
        _text.map(_enc),
        st.builds(
            lambda command, argument: command + b" " + argument,
            st.sampled_from(STAFF_COMMANDS),
            st.one_of(
                _text.map(_enc),
                st.sampled_from([b"weekly", b"none", b"3", b"-1", b"99999999999999999999"]),
                st.builds(
                    lambda addr, name: addr + b" " + name,
                    st.sampled_from([*CUSTOMERS, b"no-at-sign", b"x@", b"@y", b"\xe9@x.example"]),
                    display_names,
                ),
            ),
        ),
    ),
    max_size=5,
).map(lambda lines: b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + CRLF.join(lines))


@st.composite
def customer_headers(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """A person writing in: a usable address, everything else hostile."""
    headers = [(b"From", draw(hostile_mailboxes)), (b"Subject", draw(subject_values))]
    if draw(st.booleans()):
        headers.append((b"Message-ID", draw(st.sampled_from(MESSAGE_IDS)).encode()))
    if draw(st.integers(0, 3)) == 0:
        headers.append((b"Reply-To", draw(hostile_mailboxes | from_values)))
    return headers + draw(st.lists(harmless_headers, max_size=4))


@st.composite
def staff_headers(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """A member of staff (authenticated or not) answering on a case."""
    sender = draw(st.sampled_from(STAFF_ADDRESSES))
    results = draw(
        st.sampled_from(
            [
                b"mx.provider.example; dmarc=pass header.from=provider.example",
                b"mx.provider.example; dmarc=fail header.from=provider.example",
                b"evil.example; dmarc=pass header.from=provider.example",
                b"mx.provider.example; dmarc=pass header.from=provider.example\r\nBcc: x@y",
            ]
        )
    )
    return [
        (b"From", draw(display_names) + b" <" + sender + b">"),
        (b"Subject", draw(subject_values)),
        (b"Authentication-Results", results),
        *draw(st.lists(harmless_headers, max_size=3)),
    ]


@st.composite
def any_headers(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """Anything at all, machine headers and garbage names included."""
    headers: list[tuple[bytes, bytes]] = []
    if draw(st.integers(0, 9)):
        headers.append((b"From", draw(from_values)))
    if draw(st.integers(0, 9)):
        headers.append((b"Subject", draw(subject_values)))
    if draw(st.booleans()):
        headers.append((b"Message-ID", draw(st.sampled_from(MESSAGE_IDS)).encode()))
    return headers + draw(st.lists(extra_headers, max_size=6))


@st.composite
def generated_messages(draw: st.DrawFn) -> bytes:
    scenario = draw(st.sampled_from(["customer", "customer", "staff", "anything"]))
    if scenario == "customer":
        headers = draw(customer_headers())
    elif scenario == "staff":
        headers = draw(staff_headers())
    else:
        headers = draw(any_headers())
    headers = draw(st.permutations(headers))
    newline = draw(st.sampled_from([CRLF, CRLF, b"\n", b"\r"]))
    head = b"".join(name + b": " + value + newline for name, value in headers)
    body = draw(staff_bodies if scenario == "staff" and draw(st.booleans()) else mime_parts)
    if draw(st.booleans()):
        body = body.replace(CRLF, newline)
    return head + (b"MIME-Version: 1.0" + newline if draw(st.booleans()) else b"") + body


# -- the tests ------------------------------------------------------------------------------


@settings(HYPOTHESIS, max_examples=1200)
@given(raw=mutated_messages())
def test_mutated_corpus_mail_is_stored_and_settled(mutated_app: App, raw: bytes) -> None:
    check_receive(mutated_app, raw)


@settings(HYPOTHESIS, max_examples=1000)
@given(raw=generated_messages())
def test_generated_mail_is_stored_and_settled(generated_app: App, raw: bytes) -> None:
    check_receive(generated_app, raw)
