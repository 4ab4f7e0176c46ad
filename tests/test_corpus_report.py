"""The corpus report (bench/corpus_report.py): no person's mail lost, no robot answered."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus_report import corpora, ingest, report


def test_the_corpus_report_loses_no_person_and_answers_no_robot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tallies = {name: ingest(name, messages, tmp_path) for name, messages in corpora().items()}
    with capsys.disabled():
        print("\n" + report(list(tallies.values())))

    mail_parser = tallies["mail-parser/tests/mails"]
    assert mail_parser.set_aside == [("mail_outlook_1", "no sender address")]  # a .msg file
    assert mail_parser.cases == 16
    bounces = tallies["flufl.bounce (bounces)"]
    assert dict(bounces.robots) == {"bounce": bounces.messages} and bounces.cases == 0
    replies = tallies["email_reply_trimmer (wrapped)"]
    assert replies.cases == replies.messages == 64, "each is a person's mail"
