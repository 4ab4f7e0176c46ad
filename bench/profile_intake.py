"""`python -m bench.profile_intake`: where a backlog message's CPU goes in one mailbot process.

The backlog is bench.backlog's; it goes through mailbot's own code (build_app, then the
intake's store and process_batch in batches of 100, then app.send() to an SMTP sink) under
cProfile, without IMAP. It prints the CPU per message of each phase and the profile's
entries grouped by stage: read, decide+apply, SQLite, send.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import logging
import pstats
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backlog import BATCH_SIZE, PASSWORD, USER, build_backlog
from mailbot.app import build_app
from mailbot.config import load_settings
from sandbox import SmtpSink, sandbox_config

# (stage, what to match in "file:function") for the stage tables; first match wins
STAGES: list[tuple[str, tuple[str, ...]]] = [
    (
        "read",
        (
            "reading.py:read",
            "parse.py:parse_message_tree",
            "parse.py:",
            "classify.py:classify",
            "bounce.py:read_bounce",
            "trim.py:trim_reply",
            "details.py:find_details",
            "deadlock.py:deadlock_request",
            "html_text.py:",
            "charsets.py:",
            "outlook.py:",
            "fingerprint.py:content_sha256",
            "mailparser",
            "email/feedparser.py:",
            "email/message.py:get_payload",
            "inscriptis",
        ),
    ),
    (
        "decide+apply",
        (
            "apply.py:",
            "route.py:",
            "transitions.py:",
            "correspondence.py:",
            "letters.py:",
            "compose.py:",
            "outbox.py:queue",
            "outbox.py:OutboxWriter",
            "jinja2",
            "email/generator.py:",
            "email/_header_value_parser.py:",
            "email/headerregistry.py:",
        ),
    ),
    (
        "SQLite",
        (
            "sqlite3.Cursor",
            "sqlite3.Connection",
            "sqlalchemy/engine/",
            "sqlalchemy/orm/",
            "sqlalchemy/sql/",
            "sqlmodel",
            "store/db.py:",
            "store/cases.py:",
            "store/inbound.py:",
        ),
    ),
    ("send", ("outbox.py:", "smtp.py:", "smtplib.py:", "app.py:send")),
]


def where(func: tuple[str, int, str]) -> str:
    filename, _, name = func
    if filename == "~":
        return name.strip("<>").replace("built-in method ", "").replace("method ", "")
    parts = Path(filename).parts
    short = "/".join(parts[-2:]) if "site-packages" in parts or "python3" in filename else ""
    return f"{short or Path(filename).name}:{name}"


def stage_of(label: str) -> str | None:
    for stage, needles in STAGES:
        if any(needle in label for needle in needles):
            return stage
    return None


# (stage, module, attribute): inclusive CPU timed around each call in a --plain run
TIMED: list[tuple[str, str, str]] = [
    ("read", "mailbot.intake", "read"),  # before issue 14's renames
    ("read", "mailbot.mail.read", "Reader.read"),  # after them
    ("read: parse", "mailbot.mail.read", "parse_message_tree"),
    ("read: mail-parser", "mailbot.mail.parse", "mailparser.parse_from_bytes"),  # before 14
    ("read: tree (mail-parser)", "mailbot.mail.parse", "_Tree.from_bytes"),
    ("read: html to text", "mailbot.mail.parse", "html_to_text"),
    ("read: classify", "mailbot.reading", "classify"),
    ("read: classify", "mailbot.mail.read", "classify"),
    ("read: trim", "mailbot.reading", "trim_reply"),
    ("read: trim", "mailbot.mail.read", "trim_reply"),
    ("read: details", "mailbot.reading", "find_details"),
    ("decide: details", "mailbot.procedure.route", "find_details"),  # after issue 24
    ("read: deadlock phrases", "mailbot.reading", "deadlock_request"),
    ("decide: deadlock phrases", "mailbot.procedure.route", "deadlock_request"),
    ("decide+apply: record parsed", "mailbot.intake", "_record_parsed"),
    ("load: thread and state", "mailbot.intake", "Intake.load"),
    ("decide: route", "mailbot.intake", "route"),
    ("apply", "mailbot.apply", "Casefile.apply_message"),
    ("apply: open a case", "mailbot.apply", "Casefile._open"),
    ("letters: render", "mailbot.letters", "Letters.render"),
    ("letters: render", "mailbot.templating", "Templates.render"),
    ("letters: acknowledgement", "mailbot.correspondence", "Correspondence.acknowledgement"),
    ("letters: staff copy", "mailbot.correspondence", "Correspondence.staff_notification"),
    ("letters: thread headers", "mailbot.correspondence", "thread_of"),
    ("letters: render", "mailbot.templating", "Templates.letter"),  # a letter to a person
    ("letters: queue", "mailbot.outbox", "OutboxWriter.queue"),
    ("letters: daily cap", "mailbot.outbox", "OutboxWriter._capped"),
    ("letters: compose", "mailbot.outbox", "compose"),
    ("send", "mailbot.app", "App.send"),
    ("SQLAlchemy: flush", "sqlalchemy.orm.session", "Session.flush"),
    ("SQLAlchemy: commit", "sqlalchemy.orm.session", "Session.commit"),
]


def offline_config(work: Path, smtp_port: int) -> Path:
    """A config in WORK for mailbot as profiled: a fresh SQLite file, the SMTP sink on
    SMTP_PORT, no IMAP (the intake is handed the bytes)."""
    config = work / "config.toml"
    config.write_text(
        sandbox_config(
            imap_port=1,
            user=USER,
            password=PASSWORD,
            smtp_port=smtp_port,
            database_url=f"sqlite:///{work / 'mailbot.db'}",
            batch_size=BATCH_SIZE,
        )
    )
    return config


def timed(into: dict[str, float]) -> None:
    """Wrap each of TIMED so that its calls' CPU adds up in INTO (nested calls count in each)."""
    for label, module_name, dotted in TIMED:
        *path, name = dotted.split(".")
        try:
            owner: Any = importlib.import_module(module_name)
            for step in path:
                owner = getattr(owner, step)
        except (ImportError, AttributeError):
            continue  # not in this version of mailbot
        if not hasattr(owner, name):
            continue
        original = getattr(owner, name)
        if isinstance(original, property):
            continue

        def wrapper(*args: Any, _f: Any = original, _label: str = label, **kwargs: Any) -> Any:
            before = time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                into[_label] = into.get(_label, 0.0) + time.process_time() - before

        setattr(owner, name, wrapper)


def time_sql(engine: Any, into: dict[str, float]) -> None:
    """CPU in the database driver (the dialect's calls of it): statements, and commits."""
    dialect = engine.dialect
    for name, label in (
        ("do_execute", "SQLite: statements"),
        ("do_executemany", "SQLite: statements"),
        ("do_execute_no_params", "SQLite: statements"),
        ("do_commit", "SQLite: commit"),
    ):
        original = getattr(dialect, name)

        def wrapper(*args: Any, _f: Any = original, _label: str = label) -> Any:
            before = time.process_time()
            try:
                return _f(*args)
            finally:
                into[_label] = into.get(_label, 0.0) + time.process_time() - before

        setattr(dialect, name, wrapper)


def watch_commits(peak: list[tuple[int, Any]]) -> None:
    """Before each commit (a batch at its fullest), keep a snapshot if more is traced than ever."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    def before_commit(_: Session) -> None:
        current, _highest = tracemalloc.get_traced_memory()
        if tracemalloc.is_tracing() and (not peak or current > peak[0][0]):
            peak[:] = [(current, tracemalloc.take_snapshot())]

    event.listen(Session, "before_commit", before_commit)


@contextmanager
def cpu(into: dict[str, float], phase: str) -> Iterator[None]:
    before = time.process_time()
    yield
    into[phase] = into.get(phase, 0.0) + time.process_time() - before


def report(stats: pstats.Stats, messages: int, top: int) -> None:
    raw: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    rows = [
        (where(func), calls, tottime, cumtime)
        for func, (_, calls, tottime, cumtime, _) in raw.items()
    ]
    per = 1000 / messages

    def show(title: str, chosen: list[tuple[str, int, float, float]]) -> None:
        print(f"\n{title}\n  {'ms/msg cum':>10} {'ms/msg own':>10} {'calls/msg':>9}  function")
        for label, calls, tottime, cumtime in chosen:
            print(f"  {cumtime * per:10.3f} {tottime * per:10.3f} {calls / messages:9.1f}  {label}")

    own_by_stage: dict[str, float] = {}
    for label, _, tottime, _ in rows:
        stage = stage_of(label) or "other"
        own_by_stage[stage] = own_by_stage.get(stage, 0.0) + tottime
    print("\nown time by stage (profiled, ms/msg):")
    for stage, seconds in sorted(own_by_stage.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:14} {seconds * per:8.2f}")
    for stage, _ in STAGES:
        mine = [row for row in rows if stage_of(row[0]) == stage]
        show(f"{stage}: by cumulative", sorted(mine, key=lambda r: -r[3])[:top])
        show(f"{stage}: by own time", sorted(mine, key=lambda r: -r[2])[:top])
    show("all: by own time", sorted(rows, key=lambda r: -r[2])[: top * 2])


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(prog="python -m bench.profile_intake", description=__doc__)
    options.add_argument("--messages", type=int, default=2000)
    options.add_argument("--customers", type=int, default=500)
    options.add_argument("--replies", type=float, default=0.30)
    options.add_argument("--seed", type=int, default=14)
    options.add_argument("--top", type=int, default=12, help="entries per table (12)")
    options.add_argument("--plain", action="store_true", help="CPU only, no cProfile")
    options.add_argument("--memory", action="store_true", help="tracemalloc's peak, no cProfile")
    options.add_argument("--save", type=Path, help="write the raw profile here (pstats)")
    args = options.parse_args(argv)
    logging.disable(logging.WARNING)  # the alerts and mail-parser's notes are not measured here

    backlog = build_backlog(args.messages, args.customers, args.replies, args.seed)
    work = Path(tempfile.mkdtemp(prefix="mailbot-profile-"))
    sink = SmtpSink()
    sink.start()
    phases: dict[str, float] = {}
    profile = cProfile.Profile() if not (args.plain or args.memory) else None
    peak: list[tuple[int, Any]] = []  # --memory: the most traced at a commit, and its snapshot
    stages: dict[str, float] = {}  # --plain: CPU inside the functions of TIMED, and SQLite
    try:
        config = offline_config(work, sink.port)
        if args.plain:
            timed(stages)
        with cpu(phases, "build_app"):
            app = build_app(load_settings(config))
        if args.plain:
            time_sql(app.engine, stages)
        gc.collect()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if args.memory:
            watch_commits(peak)
            tracemalloc.start(12)
        if profile is not None:
            profile.enable()
        received = datetime.now(UTC)
        for start in range(0, len(backlog.messages), BATCH_SIZE):
            batch = backlog.messages[start : start + BATCH_SIZE]
            with cpu(phases, "store"):
                stored = app.intake.store(
                    [(raw, received, f"bench/{start + n}") for n, raw in enumerate(batch)]
                )
            with cpu(phases, "process_batch"):
                app.intake.process_batch([s for s in stored if isinstance(s, int)])
            with cpu(phases, "send"):
                app.send()
        if profile is not None:
            profile.disable()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        app.close()
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)

    n = len(backlog.messages)
    total = sum(v for k, v in phases.items() if k != "build_app")
    mode = "plain" if profile is None else "under cProfile"
    print(f"{n} messages, {len(sink.received)} letters to the sink; CPU ({mode}):")
    for phase, seconds in phases.items():
        scale = 1 if phase == "build_app" else n
        unit = "ms" if phase == "build_app" else "ms/msg"
        print(f"  {phase:14} {seconds * 1000 / scale:8.2f} {unit}")
    print(f"  {'all but build':14} {total * 1000 / n:8.2f} ms/msg")
    print(f"peak RSS {rss_after:.0f} MB (after build_app {rss_before:.0f} MB)")
    if stages:
        print("\nCPU inside (inclusive: a stage's figure holds those called inside it):")
        for label, seconds in stages.items():
            print(f"  {label:24} {seconds * 1000 / n:8.2f} ms/msg")
    if peak:
        most, snapshot = peak[0]
        _, highest = tracemalloc.get_traced_memory()
        print(
            f"\ntraced: {most / 2**20:.1f} MB at the fullest commit (highest ever"
            f" {highest / 2**20:.1f} MB); the SMTP sink's left out, the largest holders then:"
        )
        servers = [tracemalloc.Filter(False, f"*{name}*") for name in ("aiosmtpd", "sandbox")]
        for stat in snapshot.filter_traces(servers).statistics("traceback")[: args.top]:
            frames = [f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback][-6:]
            print(f"  {stat.size / 2**20:7.2f} MB {stat.count:7d}  {' < '.join(reversed(frames))}")
    if profile is not None:
        stats = pstats.Stats(profile)
        if args.save is not None:
            stats.dump_stats(str(args.save))
        report(stats, n, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
