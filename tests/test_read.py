"""Reading a message: a bounce read from mail-parser's tree reads as from its bytes."""

from __future__ import annotations

from mailbot.mail.bounce import read_bounce
from mailbot.mail.read import Reader
from tests.corpus import corpus_files

READER = Reader(frozenset({"complaints@provider.example"}))


def test_a_bounce_read_from_mail_parsers_tree_reads_as_from_its_bytes() -> None:
    bounces = [p.read_bytes() for p in corpus_files("flufl.bounce/flufl/bounce/tests/data")]
    read_as_bounces = 0
    for raw in bounces:
        reading = READER.read(raw)
        if reading.bounce is not None:
            read_as_bounces += 1
            assert reading.bounce == read_bounce(raw)
    assert read_as_bounces >= 100
