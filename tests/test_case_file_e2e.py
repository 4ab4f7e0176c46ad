"""The ombudsman's case file (issue 28): `mailbot casefile REF --output DIR`."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pytest

from tests.conftest import Mailbot
from tests.test_intake_e2e import show
from tests.test_privacy_e2e import ALICE, refused, resolved_case

# what would make a browser fetch something: the page must stand alone
EXTERNAL = r"""(src|href)\s*=\s*["'](?!#|data:)|<script|<link|@import|url\((?!#)|<img|<iframe"""


def test_a_case_file_holds_a_page_naming_every_message_and_decision_and_a_manifest(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = resolved_case(mailbot, tmp_path, capsys)
    case = show(mailbot, ref, capsys)
    folder = tmp_path / "casefile"
    assert mailbot("casefile", ref.lower(), "--output", str(folder)) == 0

    emls = sorted(p.name for p in (folder / "messages").iterdir())
    assert len(emls) == len(case["messages"]) == 9
    assert emls[0] == "001-in-complaint.eml" and emls[1].startswith("002-out-")
    page = (folder / "index.html").read_text()
    assert not re.search(EXTERNAL, page), "the page fetches nothing"
    for message in case["messages"]:
        assert escape(message["message_id"]) in page
    for event in case["events"]:
        assert escape(event["action"]) in page
    assert "Line repaired, Alice credited" in page  # the decision, by whom
    assert "tl@provider.example" in page
    assert "07700 900123" in page  # the complaint's text as received
    assert "We are testing your line." in page  # our letter's text as sent

    checked = subprocess.run(
        ["sha256sum", "-c", "MANIFEST.sha256"], cwd=folder, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == len(emls) + 1  # every message and the page
    (folder / "messages" / emls[0]).write_bytes(b"changed")
    assert subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=folder,
                          capture_output=True).returncode == 1  # fmt: skip

    line = refused(mailbot, capsys, "casefile", ref, "--output", str(folder))
    assert "is not an empty directory" in line
    assert "no case CMP-2026-999999" in refused(
        mailbot, capsys, "casefile", "CMP-2026-999999", "--output", str(tmp_path / "new")
    )


def test_a_case_file_of_an_erased_case_says_what_was_erased(
    mailbot: Mailbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = resolved_case(mailbot, tmp_path, capsys)
    later = datetime(2027, 12, 5, 10, tzinfo=UTC).isoformat()
    assert mailbot("--now", later, "erase", "--customer", ALICE) == 0
    folder = tmp_path / "erased"
    assert mailbot("casefile", ref, "--output", str(folder)) == 0
    page = (folder / "index.html").read_text()
    assert "personal data was erased on 2027-12-05" in page
    assert "07700 900123" not in page and ALICE not in page
    assert not (folder / "messages").exists()  # no message kept its bytes
    assert subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=folder).returncode == 0
