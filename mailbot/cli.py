"""The command line: one subcommand per admin task (`mailbot --help` lists them)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from imapclient.exceptions import IMAPClientError

from mailbot import audit, case_file, logs, privacy, report
from mailbot.app import App, build_app, log_outcome, wall_clock
from mailbot.config import ConfigError, config_path, in_force, load_settings
from mailbot.correspondence import (
    PERSON_LETTERS,
    letter_context,
    specimen_letters,
    specimens,
    team_name,
)
from mailbot.daemon import CLOCK_LETTERS, Outages, run_cycle, run_forever
from mailbot.mail.compose import Letter, compose, new_message_id
from mailbot.procedure.rules import ofcom_adr_wait_weeks, ofcom_words
from mailbot.store import counts, db, migrations
from mailbot.store.casebook import all_cases, quarantined_message, quarantined_messages
from mailbot.store.connection import DatabaseFailed
from mailbot.store.db import Session
from mailbot.store.held import held_message, held_messages
from mailbot.store.held import release as release_held
from mailbot.store.lock import DatabaseLock, LockHeld
from mailbot.store.lock import me as lock_me
from mailbot.store.lock import running as running_now
from mailbot.store.models import Case, Disposition, Inbound, MessageKind, OutboundStatus
from mailbot.store.timers import cases_set_aside
from mailbot.timers import retry_set_aside
from mailbot.transport.imap import MailboxUnavailable
from mailbot.transport.oauth2 import TokenError
from mailbot.transport.smtp import SmtpPermanentError, SmtpTemporaryError
from mailbot.views import case_json, case_line, held_json, quarantined_json

EX_OK, EX_USAGE, EX_TEMPFAIL = 0, 2, 75
# commands that create and change nothing in the database
READ_ONLY = {"check", "letters", "audit", "casefile"}
RETRY_SET_ASIDE = "mailbot tick --retry-set-aside"

log = logging.getLogger("mailbot")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset, e.g. {text}+00:00")
    return moment


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2026-11-30: {text!r}") from None


ABOUT = """\
mailbot keeps a UK internet provider's complaints procedure over email: it reads the
complaints mailbox, opens and threads cases, answers customers, keeps the procedure's
timers, and records every message and decision."""
EXAMPLES = """\
examples:
  mailbot --config /srv/mailbot/config.toml check --settings   are the settings right?
  mailbot --config /srv/mailbot/config.toml run                the daemon

`mailbot COMMAND --help` says what a command does, its exit codes and an example."""
USAGE = "2   a wrong setting or argument (one line names it)"
LOCKED = "75  a mailbot daemon runs on this SQLite database: stop it first"
NO_SMTP = "75  the SMTP server was not reached: the letters wait in the outbox"


def _command(
    commands: Any, name: str, summary: str, does: str, exits: Sequence[str], example: str
) -> argparse.ArgumentParser:
    """A command whose --help says what it does, its exit codes and an example."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(f"{summary[0].upper()}{summary[1:]}. {does}", 88),
        epilog="exit codes:\n  " + "\n  ".join(exits) + f"\n\nexample:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _version() -> str:
    try:
        return f"mailbot {version('mailbot')}"
    except PackageNotFoundError:  # run from a checkout, not installed
        return "mailbot (not installed)"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="mailbot",
        description=ABOUT,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=_version())
    top.add_argument("--config", help="config file (default $MAILBOT_CONFIG or ./config.toml)")
    top.add_argument("--now", type=_moment, help="fix the clock, e.g. 2026-12-24T16:00:00+00:00")
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as plain text (default) or JSON objects",
    )
    commands = top.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND"
    )
    run = _command(
        commands,
        "run",
        "the daemon: poll, process, send, until SIGTERM",
        "It waits for mail in IMAP IDLE (and polls every poll_seconds), opens and threads "
        "cases, runs the procedure's timers every tick_seconds and sends the outbox. SIGTERM "
        "or SIGINT stops it after the message in hand. Under systemd (Type=notify) it says "
        "when it is ready and keeps the watchdog alive; [metrics] listen serves Prometheus.",
        [
            "0   stopped by SIGTERM or SIGINT (--once: IMAP and SMTP were reached)",
            "2   a wrong setting, or the database's schema is behind: run `mailbot migrate`",
            "75  another mailbot holds this database (SQLite), or it was not reached",
            "75  (--once) IMAP or SMTP was not reached",
        ],
        "mailbot --config /srv/mailbot/config.toml run",
    )
    run.add_argument("--once", action="store_true", help="one fetch + process + send, then exit")
    ingest = _command(
        commands,
        "ingest",
        "process RFC 822 files as if they had arrived",
        "Each file (or - for standard input) is stored and processed as mail received now "
        "(or at --now), then the outbox is sent.",
        ["0   processed and sent", f"{USAGE}, or a file that cannot be read", NO_SMTP, LOCKED],
        "mailbot ingest data/samples/01-broadband-complaint.eml",
    )
    ingest.add_argument("files", nargs="+", help="files, or - for standard input")
    cases = _command(
        commands,
        "cases",
        "list the cases",
        "One line per case: its reference, status, customer and subject (--json: all of it).",
        ["0   listed", USAGE],
        "mailbot cases --json",
    )
    cases.add_argument("--json", action="store_true")
    show = _command(
        commands,
        "show",
        "one case with its messages and events",
        "Its due times, missing details, every message in and out and every decision, "
        "with who made it and when (--json: the letters' server answers too).",
        ["0   shown", f"{USAGE}, or there is no such case"],
        "mailbot show CMP-2026-000042",
    )
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")
    check = _command(
        commands,
        "check",
        "try the settings and say what works",
        "It logs in to IMAP and SMTP (with an OAuth2 token first, if set) and reads the "
        "database without changing it: a missing database or an old schema is said in words; "
        "then the outbox, the quarantine, bounced addresses and cases set aside.",
        [
            "0   IMAP, SMTP and the database were reached",
            f"{USAGE}, or the database's schema is behind: run `mailbot migrate`",
            "75  IMAP, SMTP, the OAuth2 token endpoint or the database was not reached",
        ],
        "mailbot check --settings",
    )
    check.add_argument(
        "--settings",
        action="store_true",
        help="first print the settings in force and where each came from, secrets masked",
    )
    tick = _command(
        commands,
        "tick",
        "run the procedure's timers at --now (or now), then send",
        "Updates, escalations, ADR notices and deadlock letters that are due go to the "
        "outbox and are sent; `mailbot run` does this every tick_seconds.",
        ["0   ticked and sent", USAGE, NO_SMTP, LOCKED],
        "mailbot --now 2026-12-24T16:00:00+00:00 tick",
    )
    tick.add_argument(
        "--retry-set-aside",
        action="store_true",
        help="first put back the cases the tick set aside after an error (once it is fixed)",
    )
    _command(
        commands,
        "migrate",
        "upgrade the database's schema to this mailbot's",
        "Run it after installing a new mailbot, with the daemon stopped; it says from which "
        "revision to which.",
        ["0   migrated, or already at this mailbot's revision", USAGE],
        "mailbot migrate",
    )
    figures = _command(
        commands,
        "report",
        "the figures of the cases received in a period (default: last month)",
        "Complaints received, resolved and escalated, first responses on time or late, "
        "updates, ADR notices sent and withheld, deadlock letters, per week; as text, JSON, "
        "CSV (one row per case) or one self-contained HTML page.",
        ["0   written", f"{USAGE}, or --to is before --from"],
        "mailbot report --from 2026-11-01 --to 2026-11-30 --format html --output nov.html",
    )
    figures.add_argument("--from", dest="first", type=_day, help="first day, e.g. 2026-11-01")
    figures.add_argument("--to", dest="last", type=_day, help="last day, included")
    figures.add_argument("--format", choices=("text", "json", "csv", "html"), default="text")
    figures.add_argument("--output", type=Path, help="write it to this file (default: stdout)")
    export = _command(
        commands,
        "export",
        "subject access: everything held about a customer, into a new directory",
        "Per case: the raw .eml of every message in and out, the case as JSON (as show "
        "--json), its events, and a README.txt saying what each file is.",
        ["0   exported", f"{USAGE}, or DIR is not empty"],
        "mailbot export --customer alice@example.net --output /tmp/sar-alice",
    )
    export.add_argument("--customer", required=True, metavar="EMAIL")
    export.add_argument("--output", required=True, type=Path, metavar="DIR")
    audit_command = _command(
        commands,
        "audit",
        "check that the records were not changed behind mailbot's back",
        "verify recomputes each case's chain of records (every message in and out, every "
        "event): a record changed, added or deleted other than by mailbot breaks it.",
        ["0   every chain holds (one summary line)", "1   a chain is broken: each case and its "
         "first bad record named", USAGE],
        "mailbot audit verify --case CMP-2026-000042",
    )  # fmt: skip
    audit_command.add_argument("action", choices=("verify",))
    audit_command.add_argument("--case", metavar="REF", help="only this case")
    casefile = _command(
        commands,
        "casefile",
        "the case file for the ombudsman: one case's page, its messages and a manifest",
        "Writes index.html (one self-contained page: the summary, every decision and who made "
        "it, the whole timeline with each message's text), messages/NNN-*.eml in time order, "
        "and MANIFEST.sha256 (sha256sum -c checks it). Reads the database only.",
        ["0   written", f"{USAGE}, no such case, or DIR is not empty"],
        "mailbot casefile CMP-2026-000042 --output /tmp/CMP-2026-000042",
    )
    casefile.add_argument("ref", metavar="REF")
    casefile.add_argument("--output", required=True, type=Path, metavar="DIR")
    erase = _command(
        commands,
        "erase",
        "remove a customer's personal data from their closed cases (UK GDPR)",
        "Each case keeps its reference, dates, timers, outcome and an event 'personal data "
        "erased'. Refused while a case is open or within [retention] hold_months.",
        ["0   erased (or, with --dry-run, said what would be)", f"{USAGE}, or refused"],
        "mailbot erase --customer alice@example.net --dry-run",
    )
    erase.add_argument("--customer", required=True, metavar="EMAIL")
    erase.add_argument("--dry-run", action="store_true", help="say what would be erased")
    purge = _command(
        commands,
        "purge",
        "erase the personal data of every case closed before DATE, past the hold",
        "The daemon never deletes by itself; run this by hand or from a systemd timer "
        "(docs/reports.md, Personal data). One log line per case.",
        ["0   purged (or, with --dry-run, said what would be)", USAGE],
        "mailbot purge --closed-before 2025-12-01 --dry-run",
    )
    purge.add_argument("--closed-before", required=True, type=_day, metavar="DATE")
    purge.add_argument("--dry-run", action="store_true", help="say what would be erased")
    actions = _kept_messages(
        commands,
        "quarantine",
        "messages set aside, and why",
        "A message that could not be processed is kept raw with its reason; after a fix, "
        "retry processes it again from the stored bytes.",
        "quarantined message",
        "One line each: id, when received, size, sender, subject, reason.",
    )
    retry = _command(
        actions,
        "retry",
        "process quarantined messages again (after a fix)",
        "Each is processed from its stored bytes; one processed at last has its IMAP copy "
        "moved from quarantine_folder to processed_folder.",
        ["0   retried", f"{USAGE}, or there is no such quarantined message", NO_SMTP, LOCKED],
        "mailbot quarantine retry --all",
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?")
    which.add_argument("--all", action="store_true")
    holding = _kept_messages(
        commands,
        "held",
        "messages held as spam or forged, and their release",
        "A message the mail platform called spam or forged ([spam]) opens no case and is "
        "answered by nobody: it is kept with its reason, in [mailbox] held_folder. Released, "
        "it is processed as on its arrival, its receipt time kept.",
        "held message",
        "One line each: id, when received, sender, subject, reason; --json gives id, from, "
        "subject, received_at and reason.",
    )
    held_release = _command(
        holding,
        "release",
        "process a held message as on its arrival (a filter's false alarm)",
        "Its receipt time is when it reached the mailbox: its first response is due from "
        "then, and the team leaders are told if that is past. Its IMAP copy moves from "
        "held_folder to processed_folder.",
        ["0   released", f"{USAGE}, or there is no such held message", NO_SMTP, LOCKED],
        "mailbot held release 12",
    )
    held_release.add_argument("id", type=int)
    letters = _command(
        commands,
        "letters",
        "the letters as they would go: check their wording before going live",
        "With [letters] templates_dir, an operator's own wording is what is shown.",
        ["0   shown or written", f"{USAGE}, or no such letter or case"],
        "mailbot letters preview acknowledgement --html",
    )
    writing = letters.add_subparsers(dest="action", required=True, metavar="ACTION")
    preview = _command(
        writing,
        "preview",
        "print one letter as it would go",
        "Sample data, or a real case's with --case; nothing is queued or sent.",
        ["0   printed", f"{USAGE}, or no such letter or case"],
        "mailbot letters preview update --case CMP-2026-000042",
    )
    preview.add_argument("kind", help="the letter: acknowledgement, update, resolution ...")
    preview.add_argument("--case", metavar="REF", help="about this case (default: a sample)")
    preview.add_argument("--html", action="store_true", help="its HTML part, not its text")
    render = _command(
        writing,
        "render",
        "every letter as KIND.eml, .txt and .html",
        "Sample data for every kind of letter, for operators to read before going live.",
        ["0   written", USAGE],
        "mailbot letters render --output /tmp/letters",
    )
    render.add_argument("--output", required=True, metavar="DIR", type=Path)
    return top


def _kept_messages(
    commands: Any, name: str, summary: str, does: str, noun: str, listed: str
) -> Any:
    """A command for messages kept on no case (quarantined, held), with its list and show
    actions: the subparsers, for its own actions."""
    top = _command(
        commands,
        name,
        summary,
        does,
        ["0   done", f"{USAGE}, or there is no such {noun}", NO_SMTP, LOCKED],
        f"mailbot {name} list",
    )
    actions = top.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = _command(
        actions,
        "list",
        f"every {noun} with its reason",
        listed,
        ["0   listed", USAGE],
        f"mailbot {name} list --json",
    )
    listing.add_argument("--json", action="store_true")
    show_one = _command(
        actions,
        "show",
        f"one {noun}: headers and reason",
        "--raw prints the bytes as received, e.g. to save them to a file.",
        ["0   shown", f"{USAGE}, or there is no such {noun}"],
        f"mailbot {name} show 12 --raw > message.eml",
    )
    show_one.add_argument("id", type=int)
    show_one.add_argument("--raw", action="store_true", help="print the raw bytes as received")
    return actions


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure(logging.DEBUG if args.verbose else logging.INFO, args.log_format == "json")
    try:
        settings = load_settings(config_path(args.config, os.environ))
        if args.command == "migrate":
            return _migrate(settings.database.url)
        fixed: datetime | None = args.now
        clock = (lambda: fixed) if fixed else wall_clock
        app = build_app(settings, clock, read_only=args.command in READ_ONLY)
    except ConfigError as exc:
        print(f"mailbot: configuration error: {exc}", file=sys.stderr)
        return EX_USAGE
    except db.SchemaError as exc:
        print(f"mailbot: {exc}", file=sys.stderr)
        return EX_USAGE
    except DatabaseFailed as exc:
        print(f"mailbot: database unreachable: {exc.orig or exc}".splitlines()[0], file=sys.stderr)
        return EX_TEMPFAIL
    command = {
        "run": _run,
        "ingest": _ingest,
        "cases": _cases,
        "show": _show,
        "check": _check,
        "tick": _tick,
        "quarantine": _quarantine,
        "held": _held,
        "report": _report,
        "export": _export,
        "audit": _audit,
        "casefile": _casefile,
        "erase": _erase,
        "purge": _purge,
        "letters": _letters,
    }
    try:
        return command[args.command](app, args)
    except Refused as exc:
        print(f"mailbot: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except privacy.Refusal as exc:
        print(f"mailbot: {exc}", file=sys.stderr)
        return EX_USAGE
    finally:
        app.close()


def _migrate(url: str) -> int:
    """Upgrade the database at URL to this mailbot's head revision and say from what to what."""
    engine = db.connect(url)
    try:
        before, after = migrations.upgrade(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        print(f"{where}: already at revision {after}")
    else:
        print(f"{where}: migrated from revision {before or 'none (empty)'} to {after}")
    return EX_OK


def _run(app: App, args: argparse.Namespace) -> int:
    # SQLite: one daemon at a time. PostgreSQL: several, for availability; they share the
    # work through row locks (FOR UPDATE SKIP LOCKED) on messages, outbox rows and cases.
    several = app.engine.dialect.name == "postgresql"
    lock = DatabaseLock(app.engine, name=f"daemon {lock_me()}" if several else "daemon")
    try:
        lock.acquire()
    except LockHeld as exc:
        print(f"mailbot: another mailbot is running on this database: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        if args.once:
            return EX_OK if run_cycle(app, threading.Event(), Outages()) else EX_TEMPFAIL
        listen = app.settings.metrics.listen
        try:
            server = app.metrics.serve(listen)[0] if listen else None
        except OSError as exc:
            print(f"mailbot: cannot serve metrics on {listen}: {exc.strerror}", file=sys.stderr)
            return EX_TEMPFAIL
        if server is not None:
            log.info("serving Prometheus metrics on http://%s/metrics", listen)
        try:
            run_forever(app, lock)
        finally:
            if server is not None:
                server.shutdown()
        return EX_OK
    finally:
        lock.release()


@contextmanager
def _one_sender(app: App, what: str) -> Iterator[None]:
    """Hold the daemon's lock for a command that sends: never two senders of one outbox.

    On SQLite the outbox's claims are no row locks, so a command beside a running daemon
    could send a letter the daemon is sending: it takes the daemon's lock, or is refused.
    On PostgreSQL every row is claimed with a row lock: commands run beside the daemons.
    """
    if app.engine.dialect.name == "postgresql":
        yield
        return
    lock = DatabaseLock(app.engine, what=what)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise Refused(
            f"a mailbot daemon is running on this database ({exc}); it fetches, ticks and "
            f"sends itself: stop it for `mailbot {what}`, or put the mail in the mailbox"
        ) from None
    try:
        yield
    finally:
        lock.release()


class Refused(Exception):
    """A command that cannot run now (exit 75, the message says why)."""


def _ingest(app: App, args: argparse.Namespace) -> int:
    for name in args.files:  # all readable, or nothing is processed
        try:
            if name != "-":
                Path(name).open("rb").close()
        except OSError as exc:
            print(f"mailbot: cannot read {name}: {exc.strerror}", file=sys.stderr)
            return EX_USAGE
    with _one_sender(app, "ingest"):
        for name in args.files:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            outcome = app.intake.receive(raw, app.clock(), f"file {name}")
            log_outcome(outcome, f"file={name}")
            if outcome.released:  # a team leader's #release, processed as the daemon does
                _, back = app.process_released(outcome.released)
                _release(app, back, app.settings.mailbox.held_folder)
        return _send(app)


def _send(app: App) -> int:
    report = app.send()
    if report.unreachable:
        log.warning("smtp unreachable, the outbox waits: %s", report.error)
        return EX_TEMPFAIL
    return EX_OK


def _tick(app: App, args: argparse.Namespace) -> int:
    with _one_sender(app, "tick"):
        if args.retry_set_aside:
            back = retry_set_aside(app.engine, app.clock())
            log.info("put back in the tick: %s", ", ".join(back) or "no case was set aside")
        log.info(app.tick().describe())
        for _, letters in CLOCK_LETTERS:  # as the daemon's loop: --now replays see them
            letters(app)
        return _send(app)


def _letters(app: App, args: argparse.Namespace) -> int:
    """The letters as they would go: the sample case's, or one of a real case's."""
    samples = specimen_letters(app.settings, app.templates)
    if args.action == "render":
        args.output.mkdir(parents=True, exist_ok=True)
        for kind, letter in samples.items():
            (args.output / f"{kind}.eml").write_bytes(_composed(app, kind, letter))
            (args.output / f"{kind}.txt").write_text(letter.text, encoding="utf-8")
            if letter.html is not None:
                (args.output / f"{kind}.html").write_text(letter.html, encoding="utf-8")
        print(f"{len(samples)} letters written to {args.output}")
        return EX_OK
    if args.kind not in samples:
        print(
            f"mailbot: no letter {args.kind!r}; the letters: {', '.join(samples)}", file=sys.stderr
        )
        return EX_USAGE
    letter = samples[args.kind]
    if args.case:
        ours = [k for k in PERSON_LETTERS if k != MessageKind.TOO_LARGE]
        if args.kind not in ours:
            print(
                f"mailbot: --case previews a letter to a customer: {', '.join(ours)}",
                file=sys.stderr,
            )
            return EX_USAGE
        unmade = _unmade(app)  # read-only: a database not made yet has no cases
        if unmade:
            print(f"mailbot: no case {args.case}: {unmade}", file=sys.stderr)
            return EX_USAGE
        with Session(app.engine) as session:
            case = db.case_by_ref(session, args.case)
            if case is None:
                print(f"mailbot: no case {args.case}", file=sys.stderr)
                return EX_USAGE
            base = letter_context(app.settings, app.templates, case, app.clock())
            extras = next(
                {k: v for k, v in context.items() if k not in base}
                for kind, context in specimens(app.settings, app.templates, case)
                if kind == args.kind
            )
            letter = app.casefile.correspondence.customer_letter(
                session, case, MessageKind(args.kind), extras
            )
            session.rollback()  # a preview: nothing is queued or kept
    if args.html:
        print(letter.html or f"mailbot: {args.kind} has no HTML part", end="")
    else:
        print(letter.text, end="")
    return EX_OK


def _composed(app: App, kind: str, letter: Letter) -> bytes:
    smtp = app.settings.smtp
    return compose(
        letter,
        from_address=smtp.from_address,
        from_name=team_name(app.settings),
        message_id=new_message_id(smtp.from_address.rpartition("@")[2]),
        date=app.clock(),
        kind=kind,
    )


def _quarantine(app: App, args: argparse.Namespace) -> int:
    with Session(app.engine) as session:
        if args.action == "list":
            rows = quarantined_messages(session)
            if args.json:
                # the bytes are read only for a message whose reading failed
                bytes_of = partial(db.raw_bytes, session)
                listed = [quarantined_json(row, partial(bytes_of, row.id)) for row in rows]
                print(json.dumps(listed, indent=2))
                return EX_OK
            for row in rows:
                print(
                    f"{row.id:>6}  {row.received_at:%Y-%m-%d %H:%M}  {row.size:>9} B  "
                    f"{row.from_address or '-':<30} {row.subject[:40]!r}  {row.reason}"
                )
            return EX_OK
        if args.action == "show":
            one = quarantined_message(session, args.id)
            if one is None:
                print(f"mailbot: no quarantined message {args.id}", file=sys.stderr)
                return EX_USAGE
            return _show_kept(session, one, args.raw, "reason")
        ids = [r.id for r in quarantined_messages(session)] if args.all else [args.id]
    with _one_sender(app, "quarantine retry"):
        status, released = EX_OK, {}
        for inbound_id in ids:
            assert inbound_id is not None
            with Session(app.engine) as session:
                again = quarantined_message(session, inbound_id)
                if again is None:
                    print(f"mailbot: no quarantined message {inbound_id}", file=sys.stderr)
                    status = EX_USAGE
                    continue
                again.disposition, again.reason = Disposition.RECEIVED, ""
                session.add(again)
                session.commit()
                key, message_id, source = again.content_sha256, again.message_id, again.source
            outcome = app.intake.process(inbound_id)
            log_outcome(outcome, f"retry id={inbound_id}")
            print(f"{inbound_id}: {outcome.describe()}")
            done = outcome.disposition in (Disposition.CASE, Disposition.IGNORED)
            if source.startswith("imap ") and done:  # not set aside again, not left for later
                released[key] = message_id
        _release(app, released, app.settings.mailbox.quarantine_folder)
        return _send(app) or status


def _show_kept(session: Session, one: Inbound, raw: bool, why: str, text: bool = False) -> int:
    """A message kept on no case: its bytes as received (RAW), else its reason and headers
    (and the TEXT read from it)."""
    kept = db.raw_bytes(session, one.id)
    if raw:
        sys.stdout.buffer.write(kept)
        return EX_OK
    head = kept[: kept.find(b"\n\n") + 1 or 4096].decode("utf-8", "replace")
    print(f"id {one.id}, received {one.received_at.isoformat()} from {one.source}")
    print(f"{why}: {one.reason}\nsize: {one.size} bytes, sha256 {one.sha256}\n")
    print(head.rstrip() + (f"\n\n{one.text[:2000].rstrip()}" if text else ""))
    return EX_OK


def _release(app: App, released: dict[str, str], folder: str) -> None:
    """Move the IMAP copies of messages processed at last out of FOLDER (the quarantine's,
    the held messages')."""
    if not released:
        return
    s = app.settings.mailbox
    try:
        with app.mailbox() as mailbox:
            moved = mailbox.take_back(folder, released, s.processed_folder)
    except (MailboxUnavailable, OSError, IMAPClientError) as exc:
        log.warning(
            "imap unreachable: %d message(s) processed stay in %s: %s", len(released), folder, exc
        )
        return
    log.info(
        "moved %d of %d message(s) processed from %s to %s",
        len(moved),
        len(released),
        folder,
        s.processed_folder,
    )


def _held(app: App, args: argparse.Namespace) -> int:
    """Held messages: listed, shown, or one released and processed as on its arrival."""
    with Session(app.engine) as session:
        if args.action == "list":
            rows = held_messages(session)
            if args.json:
                print(json.dumps([held_json(row) for row in rows], indent=2))
                return EX_OK
            for row in rows:
                print(
                    f"{row.id:>6}  {row.received_at:%Y-%m-%d %H:%M}  "
                    f"{row.from_address or '-':<30} {row.subject[:40]!r}  {row.reason}"
                )
            return EX_OK
        one = held_message(session, args.id)
        if one is None:
            print(f"mailbot: no held message {args.id}", file=sys.stderr)
            return EX_USAGE
        if args.action == "show":
            return _show_kept(session, one, args.raw, "held", text=True)
    with _one_sender(app, "held release"):
        with Session(app.engine) as session:
            again = release_held(session, args.id, "mailbot held release")
            if again is None:  # released by another in the meantime
                print(f"mailbot: no held message {args.id}", file=sys.stderr)
                return EX_USAGE
            session.commit()
        [outcome], back = app.process_released([args.id])
        print(f"{args.id}: {outcome.describe()}")
        _release(app, back, app.settings.mailbox.held_folder)
        log.info(app.tick().describe())  # a first response already overdue: told now
        return _send(app)


def _cases(app: App, args: argparse.Namespace) -> int:
    with Session(app.engine) as session:
        cases = all_cases(session)
        if args.json:
            print(json.dumps([_json(app, session, c) for c in cases], indent=2))
        else:
            for case in cases:
                print(case_line(case))
    return EX_OK


def _show(app: App, args: argparse.Namespace) -> int:
    with Session(app.engine) as session:
        case = db.case_by_ref(session, args.ref.upper())
        if case is None:
            print(f"mailbot: no case {args.ref}", file=sys.stderr)
            return EX_USAGE
        data = _json(app, session, case)
    if args.json:
        print(json.dumps(data, indent=2))
        return EX_OK
    print(case_line(case))
    print(f"  first response due {data['first_response_due']}, ADR from {data['adr_date']}")
    print(f"  missing details: {', '.join(data['missing_details']) or 'none'}")
    if case.merged_into:
        print(
            f"  merged into {case.merged_into}: its mail goes there "
            f"(mailbot show {case.merged_into})"
        )
    if data["merged_cases"]:
        print(f"  carries on {', '.join(data['merged_cases'])} (their messages are listed here)")
    if (scheme := data["adr_scheme"]) is not None:
        print(
            f"  with the ADR scheme: reference {scheme['reference']}, case file due "
            f"{scheme['case_file_due'] or '(no date)'}, decision {scheme['outcome'] or 'awaited'}"
            + (
                f", remedy due {scheme['remedy_due']}: {scheme['remedy']}"
                if scheme["remedy"]
                else ""
            )
        )
    if case.set_aside_reason:
        print(f"  SET ASIDE by the tick: {case.set_aside_reason} (after a fix: {RETRY_SET_ASIDE})")
    for m in data["messages"]:
        on = "" if m["case"] == case.ref else f" (on {m['case']})"
        print(f"  {m['at']}  {m['direction']:<3} {m['kind']:<16} {m['subject'][:60]}{on}")
    for e in data["events"]:
        print(f"  {e['at']}  event {e['actor']}: {e['action']} {e['detail']}")
    return EX_OK


def _json(app: App, session: Session, case: Case) -> dict[str, Any]:
    return case_json(session, case, next_update_due=app.casefile.next_update_due(case))


def _report(app: App, args: argparse.Namespace) -> int:
    now = app.clock()
    today = now.astimezone(app.calendar.zone).date()
    default = report.last_month(today)
    first = args.first or default.first
    last = args.last or (today if args.first else default.last)
    if last < first:
        print(f"mailbot: --to {last} is before --from {first}", file=sys.stderr)
        return EX_USAGE
    with Session(app.engine) as session:
        figures = report.build_report(
            session,
            report.Period(first, last),
            now,
            app.calendar,
            app.casefile.policy.limits,
            app.settings.procedure.adr_wait_weeks,
        )
    rendered = {
        "text": lambda: report.as_text(figures, app.calendar),
        "json": lambda: report.as_json(figures) + "\n",
        "csv": lambda: report.as_csv(figures),
        "html": lambda: report.as_html(figures, app.calendar),
    }[args.format]()
    if args.output is None:
        sys.stdout.write(rendered)
    else:
        args.output.write_text(rendered, encoding="utf-8", newline="")
    return EX_OK


def _export(app: App, args: argparse.Namespace) -> int:
    with Session(app.engine) as session:
        written = privacy.export(
            session, args.customer, args.output, app.clock(), lambda s, c: _json(app, s, c)
        )
    log.info("export: %d file(s) written to %s", len(written), args.output)
    return EX_OK


def _audit(app: App, args: argparse.Namespace) -> int:
    ref = args.case.upper() if args.case else None
    with Session(app.engine) as session:
        if ref is not None and db.case_by_ref(session, ref) is None:
            print(f"mailbot: no case {args.case}", file=sys.stderr)
            return EX_USAGE
        found = audit.verify(session, ref)
    for case_ref, broken in found.broken:
        print(f"{case_ref}: {broken.describe()}")
    print(found.summary())
    return 1 if found.broken else EX_OK


def _casefile(app: App, args: argparse.Namespace) -> int:
    with Session(app.engine) as session:
        written = case_file.write(
            session,
            args.ref.upper(),
            args.output,
            app.clock(),
            lambda s, c: _json(app, s, c),
        )
    log.info("casefile: %d file(s) written to %s", len(written), args.output)
    return EX_OK


def _staff(app: App) -> list[str]:
    return [member.email for member in app.settings.staff]


def _erase(app: App, args: argparse.Namespace) -> int:
    hold = app.settings.retention.hold_months
    with Session(app.engine) as session:
        privacy.erase_customer(session, args.customer, app.clock(), hold, _staff(app), args.dry_run)
        session.commit()
    return EX_OK


def _purge(app: App, args: argparse.Namespace) -> int:
    before = datetime.combine(args.closed_before, time(), app.calendar.zone)
    hold = app.settings.retention.hold_months
    with Session(app.engine) as session:
        done = privacy.purge(session, before, app.clock(), hold, _staff(app), args.dry_run)
        session.commit()
    what = "would erase" if args.dry_run else "erased"
    log.info("purge: %s the personal data of %d case(s)", what, len(done))
    return EX_OK


def _check(app: App, args: argparse.Namespace) -> int:
    ok = True
    s = app.settings
    if args.settings:
        print("\n".join(in_force(s, config_path(args.config, os.environ), os.environ)) + "\n")
    if app.tokens is not None:  # the first step of both logins: its failure is named alone
        try:
            app.tokens.token()
            client = s.oauth2.client_id or s.oauth2.service_account_file
            print(f"OAuth2 ok: a token from {app.tokens.endpoint} for {client}")
        except TokenError as exc:
            ok = False
            print(f"OAuth2 FAILED: {exc}")
    try:
        with app.mailbox() as mailbox:
            count = len(mailbox.uids_after(0))
        print(
            f"IMAP ok: {s.mailbox.username}@{s.mailbox.host}:{s.mailbox.port} "
            f"folder {s.mailbox.folder} holds {count} message(s)"
        )
    except MailboxUnavailable as exc:
        ok = False
        print(f"IMAP FAILED: {exc}")
    try:
        with app.smtp():
            print(
                f"SMTP ok: {s.smtp.host}:{s.smtp.port} ({s.smtp.security}), "
                f"sending as {s.smtp.from_address}"
            )
    except (SmtpTemporaryError, SmtpPermanentError) as exc:
        ok = False
        print(f"SMTP FAILED: {exc}")
    try:
        unmade = _unmade(app)
        lines = [f"database not made yet: {unmade}"] if unmade else health(app)
    except db.SchemaError as exc:
        print(f"database NOT READY: {exc}")
        return EX_USAGE
    except DatabaseFailed as exc:
        lines, ok = [f"database FAILED: {exc.orig or exc}".splitlines()[0]], False
    for line in lines + spam_verdicts(app) + doubtful_settings(app):  # a database or not
        print(line)
    return EX_OK if ok else EX_TEMPFAIL


def _unmade(app: App) -> str | None:
    """What `mailbot run` would create in the database, read without creating it (or None)."""
    path = db.sqlite_file(app.settings.database.url)
    if path is not None and not path.is_file():
        return f"{path} does not exist: `mailbot run` (or `mailbot migrate`) creates it"
    return migrations.unmade(app.engine)


def health(app: App) -> list[str]:
    """What an admin should know about the database's side, one line each."""
    with Session(app.engine) as session:
        open_cases = counts.open_case_count(session)
        queued = counts.letter_count(session, OutboundStatus.QUEUED)
        failed = counts.letter_count(session, OutboundStatus.FAILED)
        quarantined = counts.quarantined_count(session)
        bounced = counts.bounced_count(session)
        set_aside = [case.ref for case in cases_set_aside(session)]
    url = app.settings.database.url.split("@")[-1]  # never print a password
    # SQLite: the one "daemon" lock; PostgreSQL: a "daemon HOST:PID" lock per daemon
    holders = running_now(app.engine)
    running = (
        f"{len(holders)} daemon(s) running: {', '.join(sorted(holders))}"
        if holders
        else "no daemon"
    )
    lines = [
        f"database ok: {url}: {open_cases} open case(s); {running}",
        f"outbox: {queued} queued, {failed} failed (mailbot show REF --json has the answers)",
        f"quarantine: {quarantined} message(s) (mailbot quarantine list)",
    ]
    if bounced:
        lines.append(f"{bounced} address(es) bounced: no automated mail goes to them")
    if set_aside:
        lines.append(
            f"{len(set_aside)} case(s) set aside by the tick after an error, their timers stopped "
            f"(mailbot show REF says why; after a fix: {RETRY_SET_ASIDE}): {', '.join(set_aside)}"
        )
    return lines


def spam_verdicts(app: App) -> list[str]:
    """Which of the mail platform's verdicts hold a message ([spam]), and what cannot be read."""
    rules = app.intake.reader.spam
    honoured = rules.honoured()
    lines = [f"spam: held on {'; '.join(honoured) or 'no verdict'} ([spam])"]
    if rules.dmarc and not rules.dmarc_readable:
        lines.append(
            "WARNING spam.dmarc: no [staff_auth] trusted_authserv_ids and no "
            "exchange_online_tenant_id: a forged sender's DMARC fail cannot be told from one "
            "the sender wrote, so it holds nothing"
        )
    if not honoured:
        lines.append("WARNING [spam]: no verdict can be honoured: spam is answered as complaints")
    return lines


def doubtful_settings(app: App) -> list[str]:
    """Settings that work but that the procedure's owners should know of, one line each."""
    lines = []
    weeks = app.settings.procedure.adr_wait_weeks
    rule = ofcom_adr_wait_weeks(app.clock().astimezone(app.calendar.zone).date())
    if weeks > rule:
        lines.append(
            f"WARNING procedure.adr_wait_weeks = {weeks}: longer than Ofcom's rule for "
            f"communications providers ({ofcom_words(rule)})"
        )
    if app.settings.staff_auth.require == "none":
        lines.append(
            'WARNING staff_auth.require = "none": any mail from a staff address is trusted'
        )
    return lines
