"""Logging for admins: one line per message or letter, plain text or JSON for log shippers."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage().rstrip("\n"),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One line per record (a traceback follows on its own lines); a warning's trailing
    newline (warnings.formatwarning's) makes no empty line."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).rstrip("\n")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now (tests and embedders swap it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("mailbot").critical(
        "uncaught error: %s", error, exc_info=(kind, error, trace)
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    where = args.thread.name if args.thread else "a thread"
    logging.getLogger("mailbot").critical(
        "uncaught error in %s: %s",
        where,
        args.exc_value,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def configure(level: int, json_lines: bool) -> None:
    """Our one stderr handler on the root logger (replacing ours from an earlier call)."""
    handler = _Stderr()
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _Stderr)] + [handler]
    root.setLevel(level)
    # nothing reaches stderr but through this format: libraries' warnings, and an error no
    # code of ours caught (its traceback in the line, or in JSON's "error"), in any thread
    logging.captureWarnings(False)  # a second configure (a test's) hooks warnings afresh:
    logging.captureWarnings(True)  # True alone is a no-op once set, even if since undone
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    # mail-parser warns about every MIME type it does not render; our own line says what matters
    logging.getLogger("mailparser").setLevel(logging.ERROR)
