"""`python -m bench.backlog`: the daemon drains and answers a backlog of real mail; the floor.

The backlog is person-written mail from ../shared/corpus/ (attachments, HTML, several
charsets), from a set number of customers; a share of it replies to cases opened earlier in
the same backlog, by [REF] in the subject or by thread headers. mailbot runs as
`mailbot run` in a child process (so the same bench measures any version of it); the clock
runs from the moment the backlog lands in INBOX until INBOX is empty and the SMTP sink has
taken every letter. The floor fetches the same messages in batches, parses them with the
standard library and stores each one's raw bytes in SQLite, on the same machine, in the
same run.
"""

from __future__ import annotations

import argparse
import email.errors
import email.header
import email.utils
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32, default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from imapclient import IMAPClient

from sandbox import Dovecot, SmtpSink, sandbox_config

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
USER, PASSWORD = "complaints", "secret"
BATCH_SIZE = 100  # mailbot's default [mailbox] batch_size; the floor fetches the same
BACKLOG_FOLDER = "backlog"
REF_FORMAT = "CMP-{year}-{number:06d}"  # sandbox_config's (mailbot's default) case reference
QUIET_SECONDS = 3.0  # INBOX empty and no letter for this long: everything has gone
IDLE_SECONDS = 5.0  # after the drain, the daemon waits this long before its idle RSS is read
TIMEOUT_SECONDS = 1800.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# mail-parser's test mails that today's intake reads as a person's complaint: its bounce,
# newsletters, order notification, auto-reply and the one without a sender are left out
PERSON_WRITTEN = (
    "mail_malformed_1",
    "mail_malformed_3",
    "mail_test_1",
    "mail_test_10",
    "mail_test_11",
    "mail_test_12",
    "mail_test_14",
    "mail_test_17",
    "mail_test_18",
    "mail_test_19",
    "mail_test_2",
    "mail_test_3",
    "mail_test_4",
    "mail_test_7",
    "mail_test_8",
    "mail_test_9",
)
LARGE = 100_000  # bytes: a mailbox holds fewer such messages than short ones, 1 to 4 here


def corpus_dir() -> Path:
    configured = os.environ.get("MAILBOT_CORPUS")
    candidates = [Path(configured)] if configured else []
    candidates += [REPO.parent / "shared" / "corpus", Path("/work/shared/corpus")]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise SystemExit("bench: mail corpus not found; set MAILBOT_CORPUS")


# -- the backlog ------------------------------------------------------------------------------

REWRITTEN = {
    b"message-id",
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"cc",
    b"in-reply-to",
    b"references",
    b"return-path",
}


def split_headers(raw: bytes) -> tuple[list[bytes], bytes, bytes]:
    """(header fields with their continuation lines, the line ending, the rest)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    cut = min(ends) if ends else len(raw)
    head, rest = raw[:cut], raw[cut:]
    eol = b"\r\n" if b"\r\n" in head[:2000] else b"\n"
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    if fields and not fields[-1].endswith(b"\n"):
        fields[-1] += eol
    return fields, eol, rest


def rewrite(raw: bytes, new: dict[str, str], drop_subject: bool) -> bytes:
    """RAW with the headers in NEW put first and the ones they replace taken out."""
    fields, eol, rest = split_headers(raw)
    drop = REWRITTEN | ({b"subject"} if drop_subject else set())
    kept = [f for f in fields if f.split(b":", 1)[0].strip().lower() not in drop]
    added = [f"{name}: {value}".encode() + eol for name, value in new.items()]
    return b"".join(added + kept) + (rest or eol)


def subject_of(raw: bytes) -> str:
    value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Subject")
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value or ""))))
    except (UnicodeError, LookupError, email.errors.HeaderParseError):
        text = str(value or "")
    return " ".join(text.split())[:120] or "my complaint"


def typed_reply(body: bytes, headers: dict[str, str]) -> bytes:
    """A customer's plain-text reply around one of email_reply_trimmer's bodies (no headers)."""
    head = {
        **headers,
        "Date": email.utils.formatdate(),
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Transfer-Encoding": "8bit",
    }
    lines = "".join(f"{name}: {value}\r\n" for name, value in head.items())
    return lines.encode() + b"\r\n" + body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass
class Backlog:
    messages: list[bytes]
    originals: int  # each opens a case
    replies_by_ref: int  # "[REF]" in the subject, no thread headers
    replies_by_headers: int  # In-Reply-To / References naming the case's first message
    customers: int
    sources: Counter[str] = field(default_factory=Counter)


def build_backlog(count: int, customers: int, reply_share: float, seed: int) -> Backlog:
    """COUNT messages: new complaints, and replies (REPLY_SHARE of them) to earlier ones by the
    same customer. Case references are foreseen: cases are numbered as their first messages
    come, and the run checks that every reply landed (cases opened == new complaints)."""
    corpus = corpus_dir()
    complaints = [
        (corpus / "mail-parser/tests/mails" / name).read_bytes() for name in PERSON_WRITTEN
    ]
    weights = [1 if len(raw) > LARGE else 4 for raw in complaints]
    replies = sorted((corpus / "email_reply_trimmer/test/emails").glob("*.txt"))
    typed = [path.read_bytes() for path in replies]
    rng = random.Random(seed)
    reply_count = round(count * reply_share)
    originals = count - reply_count
    if originals < customers:
        raise SystemExit(
            f"bench: {originals} new complaints cannot come from {customers} customers"
        )
    # the first message is new; replies fall anywhere after it
    reply_at = set(rng.sample(range(1, count), reply_count))
    owners = list(range(customers)) + [
        rng.randrange(customers) for _ in range(originals - customers)
    ]
    rng.shuffle(owners)
    year = datetime.now(ZoneInfo("Europe/London")).year
    cases: list[tuple[str, str, str, str]] = []  # (From, first Message-ID, subject, ref)
    backlog = Backlog([], originals, 0, 0, customers)
    for n in range(count):
        message_id = f"<backlog-{n:06d}.{seed}@customers.example>"
        base = {"Message-ID": message_id, "To": "complaints@provider.example"}
        if n not in reply_at:
            index = rng.choices(range(len(complaints)), weights)[0]
            raw = complaints[index]
            customer = owners[len(cases)]
            sender = f'"Customer {customer}" <customer{customer:03d}@customers.example>'
            ref = REF_FORMAT.format(year=year, number=len(cases) + 1)
            cases.append((sender, message_id, subject_of(raw), ref))
            backlog.messages.append(rewrite(raw, {**base, "From": sender}, drop_subject=False))
            backlog.sources[f"new: {PERSON_WRITTEN[index]}"] += 1
            continue
        sender, first_id, subject, ref = rng.choice(cases)
        headers = {**base, "From": sender}
        if rng.random() < 0.5:
            headers["Subject"] = f"Re: [{ref}] {subject}"
            backlog.replies_by_ref += 1
        else:
            headers["Subject"] = f"Re: {subject}"
            headers["In-Reply-To"] = first_id
            headers["References"] = first_id
            backlog.replies_by_headers += 1
        if rng.random() < 0.5:
            body = rng.randrange(len(typed))
            backlog.messages.append(typed_reply(typed[body], headers))
            backlog.sources["reply: email_reply_trimmer text"] += 1
        else:
            index = rng.choices(range(len(complaints)), weights)[0]
            backlog.messages.append(rewrite(complaints[index], headers, drop_subject=True))
            backlog.sources[f"reply: {PERSON_WRITTEN[index]}"] += 1
    return backlog


def mix(messages: list[bytes]) -> dict[str, Any]:
    """What the backlog holds: attachments, HTML, charsets, size."""
    parser = BytesParser(policy=compat32)
    charsets: Counter[str] = Counter()
    attachments = html = 0
    for raw in messages:
        parts = list(parser.parsebytes(raw).walk())
        attachments += any(is_attachment(part) for part in parts)
        html += any(part.get_content_type() == "text/html" for part in parts)
        for charset in {str(part.get_content_charset()) for part in parts} - {"None"}:
            charsets[charset] += 1
    total = sum(len(raw) for raw in messages)
    return {
        "megabytes": round(total / 1e6, 1),
        "kb_per_message": round(total / len(messages) / 1e3, 1),
        "with_attachments": attachments,
        "with_html": html,
        "charsets": dict(charsets.most_common()),
    }


def is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).lower()
    return disposition.startswith("attachment") or bool(part.get_filename())


# -- the daemon, watched through /proc ---------------------------------------------------------


def family(pid: int) -> list[int]:
    """PID and its living descendants."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        queue.extend(int(child) for child in children)
    return found


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system time of PID, its reaped children and its living descendants."""
    total = 0
    for number, member in enumerate(family(pid)):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if number == 0:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / CLOCK_TICKS


@dataclass
class Watched:
    """The peak RSS of each process of the daemon's family (VmHWM is per process)."""

    pid: int
    peaks: dict[int, int] = field(default_factory=dict)

    def sample(self) -> None:
        for member in family(self.pid):
            self.peaks[member] = max(self.peaks.get(member, 0), status_kb(member, "VmHWM:"))

    def peak_mb(self) -> float:
        return sum(self.peaks.values()) / 1024

    def peaks_mb(self) -> list[float]:
        """Each process's peak, the daemon's first."""
        return [round(kb / 1024, 1) for kb in self.peaks.values() if kb]

    def rss_mb(self) -> float:
        return sum(status_kb(member, "VmRSS:") for member in family(self.pid)) / 1024


def wait_until_idle(process: subprocess.Popen[bytes], db: Path, timeout: float = 60.0) -> None:
    """Until the daemon has made its database and spent under 20 ms of CPU in a second."""
    deadline = time.monotonic() + timeout
    history: list[tuple[float, float]] = []
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: mailbot exited with {process.returncode} while starting")
        now = time.monotonic()
        history.append((now, cpu_seconds(process.pid)))
        old = [cpu for at, cpu in history if at <= now - 1.0]
        if db.exists() and old and history[-1][1] - old[-1] < 0.02:
            return
        time.sleep(0.1)
    raise SystemExit("bench: mailbot did not settle after starting")


@dataclass
class Drain:
    seconds: float  # backlog in INBOX -> INBOX empty and every letter taken by the sink
    drain_seconds: float  # backlog in INBOX -> INBOX empty
    cpu_seconds: float  # the daemon's family, over `seconds`
    peak_rss_mb: float
    peak_rss_mb_each: list[float]  # the daemon, then any helper process it started
    startup_rss_mb: float  # waiting, before the backlog
    idle_rss_mb: float  # waiting, after the backlog
    letters: int
    letters_to: dict[str, int]
    cases: int | None
    queued_left: int | None


def drain(imap: IMAPClient, sink: SmtpSink, config: Path, db: Path, log: Path) -> Drain:
    with log.open("ab") as output:
        process = subprocess.Popen(
            [PYTHON, "-m", "mailbot", "--config", str(config), "run"],
            stdout=output,
            stderr=output,
            cwd=REPO,
        )
    watched = Watched(process.pid)
    try:
        wait_until_idle(process, db)
        startup_rss = watched.rss_mb()
        imap.select_folder(BACKLOG_FOLDER, readonly=True)
        uids = imap.search(["ALL"])
        cpu_before = cpu_seconds(process.pid)
        started = time.monotonic()
        imap.copy(uids, "INBOX")
        drained_at = last_letter_at = None
        cpu_at_end = cpu_before
        letters = 0
        while True:
            now = time.monotonic()
            if now - started > TIMEOUT_SECONDS or process.poll() is not None:
                raise SystemExit(f"bench: the drain did not end (exit {process.poll()}), see {log}")
            watched.sample()
            cpu = cpu_seconds(process.pid)
            if len(sink.received) != letters:
                letters, last_letter_at, cpu_at_end = len(sink.received), now, cpu
            if drained_at is None:
                if imap.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 0:
                    drained_at = now
                    if last_letter_at is None or last_letter_at < now:
                        cpu_at_end = cpu
            elif now - max(drained_at, last_letter_at or 0) >= QUIET_SECONDS:
                break
            time.sleep(0.1)
        ended = max(drained_at, last_letter_at or 0)
        time.sleep(IDLE_SECONDS)
        watched.sample()
        idle_rss = watched.rss_mb()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    recipients: Counter[str] = Counter()
    for envelope in sink.received:
        for address in envelope.rcpt_tos:
            recipients[address.rsplit("@", 1)[-1]] += 1
    return Drain(
        seconds=ended - started,
        drain_seconds=drained_at - started,
        cpu_seconds=cpu_at_end - cpu_before,
        peak_rss_mb=watched.peak_mb(),
        peak_rss_mb_each=watched.peaks_mb(),
        startup_rss_mb=startup_rss,
        idle_rss_mb=idle_rss,
        letters=len(sink.received),
        letters_to=dict(recipients),
        cases=count_cases(config),
        queued_left=queued_left(db),
    )


def count_cases(config: Path) -> int | None:
    """How many cases mailbot says it has (through its CLI, whatever its tables)."""
    done = subprocess.run(
        [PYTHON, "-m", "mailbot", "--config", str(config), "cases", "--json"],
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    try:
        return len(json.loads(done.stdout))
    except ValueError:
        return None


def queued_left(db: Path) -> int | None:
    """Letters still waiting in the outbox, where the table is the one today's code has."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            value: int = conn.execute(
                "SELECT count(*) FROM outbound WHERE status = 'QUEUED'"
            ).fetchone()[0]
            return value
    except sqlite3.Error:
        return None


# -- the floor --------------------------------------------------------------------------------


def floor(imap: IMAPClient, path: Path) -> tuple[float, float, int]:
    """Batched fetch + stdlib parse + one committed SQLite row per message:
    (seconds, CPU seconds of this thread, messages)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE inbound (id INTEGER PRIMARY KEY, message_id TEXT, sha256 TEXT,"
        " raw BLOB, size INTEGER, received_at TEXT, subject TEXT, from_address TEXT)"
    )
    parser = BytesParser(policy=default)
    cpu_before = resource.getrusage(resource.RUSAGE_THREAD)
    started = time.monotonic()
    done = 0
    imap.select_folder(BACKLOG_FOLDER, readonly=True)
    uids = sorted(imap.search(["ALL"]))
    for start in range(0, len(uids), BATCH_SIZE):
        batch = uids[start : start + BATCH_SIZE]
        fetched = imap.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE"])
        for uid in batch:
            raw = bytes(fetched[uid][b"BODY[]"])
            message = parser.parsebytes(raw)
            row = (
                str(message.get("Message-ID", "")),
                hashlib.sha256(raw).hexdigest(),
                raw,
                len(raw),
                str(fetched[uid][b"INTERNALDATE"]),
                str(message.get("Subject", "")),
                str(message.get("From", "")),
            )
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO inbound (message_id, sha256, raw, size, received_at,"
                " subject, from_address) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            conn.execute("COMMIT")
            done += 1
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_THREAD)
    conn.close()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return seconds, cpu, done


# -- the run ----------------------------------------------------------------------------------


def load(imap: IMAPClient, messages: list[bytes]) -> None:
    imap.create_folder(BACKLOG_FOLDER)
    chunk: list[bytes] = []
    for raw in messages:
        chunk.append(raw)
        if len(chunk) == 100 or sum(map(len, chunk)) > 20_000_000:
            imap.multiappend(BACKLOG_FOLDER, chunk)
            chunk = []
    if chunk:
        imap.multiappend(BACKLOG_FOLDER, chunk)


def table(rows: list[tuple[str, str, str]]) -> str:
    heads = ("figure", "measured", "target")
    widths = [max(len(row[i]) for row in [heads, *rows]) for i in range(3)]

    def line(cells: tuple[str, str, str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(heads), rule, *map(line, rows)])


def git_revision() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    )
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(prog="python -m bench.backlog", description=__doc__)
    options.add_argument("--messages", type=int, default=2000, help="backlog size (2000)")
    options.add_argument("--customers", type=int, default=500, help="distinct customers (500)")
    options.add_argument("--replies", type=float, default=0.30, help="share of replies (0.30)")
    options.add_argument("--seed", type=int, default=14)
    options.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    options.add_argument("--keep", action="store_true", help="keep the work directory")
    args = options.parse_args(argv)

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="mailbot-backlog-"))
    dovecot = Dovecot({USER: PASSWORD})
    sink = SmtpSink()
    begun = time.monotonic()
    try:
        dovecot.start()
        sink.start()
        backlog = build_backlog(args.messages, args.customers, args.replies, args.seed)
        held = mix(backlog.messages)
        print(
            f"backlog: {args.messages} messages, {held['megabytes']} MB, {backlog.originals} new"
            f" complaints and {args.messages - backlog.originals} replies from"
            f" {args.customers} customers"
        )
        config, db = work / "config.toml", work / "mailbot.db"
        config.write_text(
            sandbox_config(
                imap_port=dovecot.port,
                user=USER,
                password=PASSWORD,
                smtp_port=sink.port,
                database_url=f"sqlite:///{db}",
                poll_seconds=5,  # IDLE brings the backlog at once; polling is the fallback
                batch_size=BATCH_SIZE,
            )
            # a bench customer may write more new complaints in a day than a person would:
            # measure cases opened, not the flood rule's threading (issue 26)
            + "\n[limits]\nnew_cases_per_sender_per_day = 1000\n"
        )
        with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False) as imap:
            imap.login(USER, PASSWORD)
            imap.normalise_times = False
            load(imap, backlog.messages)
            print("mailbot: draining and sending ...")
            result = drain(imap, sink, config, db, work / "mailbot.log")
            print("floor: fetch + stdlib parse + SQLite insert ...")
            floor_seconds, floor_cpu, floor_done = floor(imap, work / "floor.db")
    finally:
        sink.stop()
        dovecot.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    n = args.messages
    rate, floor_rate = n / result.seconds, floor_done / floor_seconds
    figures: dict[str, Any] = {
        "revision": git_revision(),
        "messages": n,
        "new_complaints": backlog.originals,
        "replies_by_ref": backlog.replies_by_ref,
        "replies_by_headers": backlog.replies_by_headers,
        "customers": args.customers,
        "backlog": held,
        "sources": dict(backlog.sources.most_common()),
        **asdict(result),
        "msg_per_s": round(rate, 1),
        "drain_only_msg_per_s": round(n / result.drain_seconds, 1),
        "cpu_ms_per_message": round(1000 * result.cpu_seconds / n, 1),
        "floor_seconds": round(floor_seconds, 2),
        "floor_msg_per_s": round(floor_rate, 1),
        "floor_cpu_ms_per_message": round(1000 * floor_cpu / floor_done, 2),
        "ratio_to_floor": round(rate / floor_rate, 3),
        "targets": {"ratio_to_floor": ">= 0.30", "peak_rss_mb": "< 150"},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "total_seconds": round(time.monotonic() - begun, 1),
    }
    ok_ratio = rate / floor_rate >= 0.30
    ok_rss = result.peak_rss_mb < 150
    each = result.peak_rss_mb_each
    cases = "?" if result.cases is None else str(result.cases)
    queued = "?" if result.queued_left is None else str(result.queued_left)
    rows = [
        (
            "backlog",
            f"{n} msgs, {held['kb_per_message']} kB each; {held['with_attachments']} with"
            f" attachments, {held['with_html']} with HTML, {len(held['charsets'])} charsets",
            "-",
        ),
        (
            "  replies to earlier cases",
            f"{backlog.replies_by_ref} by [REF], {backlog.replies_by_headers} by thread headers",
            f"{args.replies:.0%}",
        ),
        ("  cases opened (= new complaints)", f"{cases} (of {backlog.originals})", "all"),
        (
            "letters taken by the SMTP sink",
            f"{result.letters} ({', '.join(f'{k}: {v}' for k, v in result.letters_to.items())});"
            f" {queued} left queued",
            "-",
        ),
        (
            "mailbot: drained and sent",
            f"{result.seconds:.1f} s = {rate:.1f} msg/s (INBOX empty after"
            f" {result.drain_seconds:.1f} s)",
            "-",
        ),
        ("mailbot: CPU per message", f"{1000 * result.cpu_seconds / n:.1f} ms", "-"),
        (
            "floor: fetch + stdlib parse + SQLite",
            f"{floor_seconds:.1f} s = {floor_rate:.1f} msg/s,"
            f" {1000 * floor_cpu / floor_done:.2f} ms CPU/msg",
            "-",
        ),
        (
            "mailbot / floor",
            f"{rate / floor_rate:.1%}  {'ok' if ok_ratio else 'MISSED'}",
            ">= 30%",
        ),
        (
            "peak RSS (VmHWM, daemon + children)",
            f"{result.peak_rss_mb:.0f} MB  {'ok' if ok_rss else 'MISSED'}"
            + (f" ({' + '.join(f'{mb:.0f}' for mb in each)})" if len(each) > 1 else ""),
            "< 150 MB",
        ),
        (
            "idle RSS (waiting: before / after)",
            f"{result.startup_rss_mb:.0f} MB / {result.idle_rss_mb:.0f} MB",
            "reported",
        ),
    ]
    print()
    print(table(rows))
    load_text = " ".join(f"{x:.2f}" for x in load_before)
    print(
        f"\nrevision {figures['revision']}, {os.cpu_count()} CPU(s), load average before"
        f" {load_text}; {figures['total_seconds']:.0f} s in all"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ok_ratio and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
