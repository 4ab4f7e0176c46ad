"""Where the shared corpus of real-world mail lives, for tests that read it."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    """$MAILBOT_CORPUS, else <repo>/../shared/corpus, else /work/shared/corpus.

    Raises instead of skipping: a missing corpus must fail the suite, not thin it.
    """
    configured = os.environ.get("MAILBOT_CORPUS")
    candidates = (
        [Path(configured)]
        if configured
        else [REPO.parent / "shared" / "corpus", Path("/work/shared/corpus")]
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(candidate) for candidate in candidates)
    raise FileNotFoundError(f"mail corpus not found (tried {tried}); set MAILBOT_CORPUS")


def corpus_files(relative: str) -> list[Path]:
    """The regular files directly under corpus folder RELATIVE, sorted by name."""
    folder = corpus_dir() / relative
    files = sorted(path for path in folder.iterdir() if path.is_file())
    if not files:
        raise FileNotFoundError(f"no files in {folder}")
    return files
