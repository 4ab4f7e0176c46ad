"""`python -m bench.pure`: ms per backlog message in each pure function on a message's path.

The backlog (bench.backlog's) goes once through mailbot's own code as in
bench.profile_intake (store, process_batch, send to an SMTP sink, no IMAP), with each
function of PURE recording the arguments it was called with. Then each function alone is
called again over what it recorded, best of --repeat runs: its CPU per backlog message,
callees included. Run it on two versions of mailbot, back to back, to compare them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backlog import BATCH_SIZE, build_backlog
from bench.profile_intake import offline_config
from mailbot.app import build_app
from mailbot.config import load_settings
from sandbox import SmtpSink

# (module, attribute): the pure functions issue 14's wall-time profile showed
PURE: list[tuple[str, str]] = [
    ("mailbot.procedure.details", "find_details"),
    ("mailbot.procedure.details", "_has_contact_details"),
    ("mailbot.procedure.details", "_has_service_details"),
    ("mailbot.procedure.details", "_has_phone_number"),
    ("mailbot.procedure.deadlock", "deadlock_request"),
    ("mailbot.mail.compose", "_part"),
    ("mailbot.mail.compose", "_words"),
    ("mailbot.mail.html_text", "html_to_text"),
    ("mailbot.mail.parse", "_payload"),
    ("mailbot.mail.parse", "_addresses"),
    ("mailbot.mail.parse", "_declared_charsets"),
    ("mailbot.mail.parse", "_decode_words"),
    ("mailbot.mail.parse", "_unfold"),
    ("mailbot.mail.parse", "_filename"),
    ("mailbot.mail.charsets", "_detected"),
    ("mailbot.mail.classify", "_no_reply"),
    ("mailbot.mail.trim", "_attribution_size"),
    ("mailbot.procedure.calendar", "day_words"),
    ("mailbot.procedure.calendar", "BusinessCalendar._moment"),
    ("mailbot.procedure.calendar", "BusinessCalendar.next_opening"),
]

Call = tuple[tuple[Any, ...], dict[str, Any]]


def record(calls: dict[str, list[Call]]) -> list[tuple[Any, str, Any]]:
    """Wrap each of PURE so that its calls' arguments land in CALLS; what to put back."""
    undo = []
    for module_name, dotted in PURE:
        *path, name = dotted.split(".")
        owner: Any = importlib.import_module(module_name)
        for step in path:
            owner = getattr(owner, step)
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        into = calls.setdefault(dotted, [])

        def wrapper(*args: Any, _f: Any = original, _into: Any = into, **kwargs: Any) -> Any:
            _into.append((args, kwargs))
            return _f(*args, **kwargs)

        # a function imported by name elsewhere ("from ... import find_details") is wrapped
        # there too
        holders = [owner] + [
            module
            for module_name, module in sys.modules.items()
            if module_name.startswith("mailbot.") and getattr(module, name, None) is original
        ]
        for holder in dict.fromkeys(holders):
            setattr(holder, name, wrapper)
            undo.append((holder, name, original))
    return undo


def drain(messages: list[bytes]) -> None:
    """The backlog through store, process_batch and send, as bench.profile_intake runs it."""
    work = Path(tempfile.mkdtemp(prefix="mailbot-pure-"))
    sink = SmtpSink()
    sink.start()
    try:
        app = build_app(load_settings(offline_config(work, sink.port)))
        received = datetime.now(UTC)
        for start in range(0, len(messages), BATCH_SIZE):
            batch = messages[start : start + BATCH_SIZE]
            stored = app.intake.store(
                [(raw, received, f"bench/{start + n}") for n, raw in enumerate(batch)]
            )
            app.intake.process_batch([s for s in stored if isinstance(s, int)])
            app.send()
        app.close()
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


def best_seconds(function: Any, calls: list[Call], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        before = time.process_time()
        for args, kwargs in calls:
            function(*args, **kwargs)
        best = min(best, time.process_time() - before)
    return best


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(prog="python -m bench.pure", description=__doc__)
    options.add_argument("--messages", type=int, default=2000)
    options.add_argument("--customers", type=int, default=500)
    options.add_argument("--replies", type=float, default=0.30)
    options.add_argument("--seed", type=int, default=14)
    options.add_argument("--repeat", type=int, default=3, help="timed runs, the best kept (3)")
    args = options.parse_args(argv)
    logging.disable(logging.WARNING)

    backlog = build_backlog(args.messages, args.customers, args.replies, args.seed)
    calls: dict[str, list[Call]] = {}
    undo = record(calls)
    try:
        drain(backlog.messages)
    finally:
        for holder, name, original in reversed(undo):
            setattr(holder, name, original)
    n = len(backlog.messages)
    print(f"{n} messages; CPU in each function, callees included (best of {args.repeat}):")
    print(f"  {'ms/msg':>8} {'calls/msg':>9}  function")
    for module_name, dotted in PURE:
        function: Any = importlib.import_module(module_name)
        for step in dotted.split("."):
            function = getattr(function, step)
        seconds = best_seconds(function, calls[dotted], args.repeat)
        print(f"  {seconds * 1000 / n:8.3f} {len(calls[dotted]) / n:9.1f}  {dotted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
