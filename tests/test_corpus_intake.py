"""Real-world mail through `mailbot ingest`: no crash, nothing lost, robots unanswered."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlmodel import Session, create_engine, select

from mailbot.store.models import Attachment, Disposition, Inbound, InboundRaw, MessageKind
from tests.conftest import Mailbot
from tests.corpus import corpus_files

NOW = "2026-11-24T10:00:00+00:00"


def stored(mailbot: Mailbot) -> list[Inbound]:
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        return list(session.exec(select(Inbound)))


def raw_kept(mailbot: Mailbot) -> dict[int | None, bytes]:
    """Each stored message's bytes as kept, by its inbound id."""
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        return {row.inbound_id: row.raw for row in session.exec(select(InboundRaw))}


def test_every_mail_parser_corpus_message_ends_on_a_case_or_set_aside_with_a_reason(
    mailbot: Mailbot,
) -> None:
    files = corpus_files("mail-parser/tests/mails")
    assert mailbot("--now", NOW, "ingest", *map(str, files)) == 0

    rows = {row.sha256: row for row in stored(mailbot)}
    kept = raw_kept(mailbot)
    for path in files:
        raw = path.read_bytes()
        row = rows[hashlib.sha256(raw).hexdigest()]
        assert kept[row.id] == raw, f"{path.name}: raw bytes kept"
        assert row.disposition is not Disposition.RECEIVED, f"{path.name}: processed"
        if row.disposition is Disposition.CASE:
            assert row.case_id is not None
        else:
            assert row.reason, f"{path.name}: set aside without a reason"
    people = [r for r in rows.values() if r.kind is MessageKind.COMPLAINT]
    acknowledged = [
        e for e in mailbot.smtp.received if e.message["Auto-Submitted"] == "auto-replied"
    ]
    assert len(acknowledged) == len(people) >= 15
    assert all(r.from_address for r in people)


def test_attachments_of_corpus_mail_are_kept_under_safe_names(mailbot: Mailbot) -> None:
    files = corpus_files("mail-parser/tests/mails")
    assert mailbot("--now", NOW, "ingest", *map(str, files)) == 0
    engine = create_engine(mailbot.db_url)
    with Session(engine) as session:
        attachments = list(session.exec(select(Attachment)))
    assert len(attachments) >= 5
    for attachment in attachments:
        assert "/" not in attachment.filename and "\\" not in attachment.filename
        assert attachment.filename not in ("", ".", "..")
        assert attachment.size == len(attachment.payload) > 0


def test_every_flufl_bounce_is_recorded_as_a_bounce_and_never_acknowledged(
    mailbot: Mailbot,
) -> None:
    files = corpus_files("flufl.bounce/flufl/bounce/tests/data")
    assert len(files) >= 100
    assert mailbot("--now", NOW, "ingest", *map(str, files)) == 0

    rows = stored(mailbot)
    assert len(rows) == len({hashlib.sha256(p.read_bytes()).digest() for p in files})
    not_bounces = [r.source for r in rows if r.kind is not MessageKind.BOUNCE]
    assert not_bounces == []
    assert mailbot.smtp.received == []


def test_bounces_that_name_no_case_open_no_case(
    mailbot: Mailbot, capsys: pytest.CaptureFixture[str]
) -> None:
    files = corpus_files("flufl.bounce/flufl/bounce/tests/data")[:10]
    assert mailbot("--now", NOW, "ingest", *map(str, files)) == 0
    capsys.readouterr()
    assert mailbot("cases", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
