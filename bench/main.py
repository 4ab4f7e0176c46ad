"""Issue 6's figures: ack latency, drain throughput against a floor, the tick's cost, memory.

Everything runs against a throwaway Dovecot and an aiosmtpd sink (sandbox/) on
127.0.0.1; mailbot itself always runs as a child process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import email.errors
import email.header
import email.utils
import json
import math
import os
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

from bench.backlog import corpus_dir, family, floor, split_headers, status_kb
from sandbox import Dovecot, free_port, sandbox_config

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PASSWORD = "secret"
BATCH_SIZE = 100  # mailbot's default [mailbox] batch_size; the floor fetches the same
BACKLOG_FOLDER = "backlog"
LATENCY_TIMEOUT = 15.0  # beyond this an ack counts as missed; we still wait one poll for it
TICK_NOW = datetime(2026, 3, 10, 16, 30, tzinfo=UTC)  # a Tuesday, after the 16:00 cut-off


# -- the SMTP sink: timestamps each message's DATA ----------------------------------------------


@dataclass
class Arrival:
    at: float  # time.monotonic() when DATA was complete
    rcpt_tos: list[str]
    size: int


@dataclass
class TimingSink:
    """An aiosmtpd handler that keeps only when each message arrived, and for whom."""

    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        with self.lock:
            self.arrivals.append(Arrival(now, list(envelope.rcpt_tos), len(envelope.content)))
            self.arrived.notify_all()
        return "250 2.0.0 queued as bench"

    def clear(self) -> None:
        with self.lock:
            self.arrivals.clear()

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def wait_for(self, address: str, timeout: float) -> float | None:
        """When the first message to ADDRESS arrived, waiting up to TIMEOUT seconds for it."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for arrival in self.arrivals:
                    if address in arrival.rcpt_tos:
                        return arrival.at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)


# -- the backlog: real-world mail, rewritten -----------------------------------------------------

REWRITTEN = {b"message-id", b"from", b"sender", b"reply-to", b"in-reply-to", b"references"}


def rewrite(raw: bytes, new: dict[str, str], drop_subject: bool) -> bytes:
    fields, eol, rest = split_headers(raw)
    drop = REWRITTEN | ({b"subject"} if drop_subject else set())
    kept = [f for f in fields if f.split(b":", 1)[0].strip().lower() not in drop]
    added = [f"{name}: {value}".encode() + eol for name, value in new.items()]
    body = rest if rest else eol
    return b"".join(added + kept) + body


def subject_of(raw: bytes) -> str:
    value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Subject")
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value or ""))))
    except (UnicodeError, LookupError, email.errors.HeaderParseError):
        text = str(value or "")
    return " ".join(text.split())[:150]


def build_backlog(count: int, reply_share: float, seed: int = 6) -> list[bytes]:
    """COUNT messages from the corpus, each with its own Message-ID and From; some replies."""
    corpus = corpus_dir()
    files = sorted((corpus / "mail-parser/tests/mails").iterdir())
    files += sorted((corpus / "flufl.bounce/flufl/bounce/tests/data").iterdir())
    sources = [(p.read_bytes(), p.name) for p in files if p.is_file()]
    rng = random.Random(seed)
    ids: list[str] = []
    subjects: list[str] = []
    senders: list[str] = []
    out: list[bytes] = []
    for n in range(count):
        raw, _name = rng.choice(sources)
        message_id = f"<bench-{n:06d}.{seed}@customers.example>"
        new = {
            "Message-ID": message_id,
            "From": f'"Customer {n}" <customer{n:06d}@customers.example>',
        }
        subject = subject_of(raw)
        drop_subject = False
        if n and rng.random() < reply_share:
            earlier = rng.randrange(n)
            how = rng.random()
            new["From"] = senders[earlier]  # the customer writes again (a stranger would not count)
            if how < 0.75:  # a proper reply: headers (and, mostly, a "Re:" subject)
                new["In-Reply-To"] = ids[earlier]
                new["References"] = ids[earlier]
            if how < 0.5 or how >= 0.75:  # "Re:" of an earlier subject, no [REF]
                subject = f"Re: {subjects[earlier]}"
                new["Subject"] = subject
                drop_subject = True
        ids.append(message_id)
        subjects.append(subject)
        senders.append(new["From"])
        out.append(rewrite(raw, new, drop_subject))
    return out


def complaint(n: int, run: int) -> tuple[bytes, str]:
    address = f"latency{run}-{n}@customers.example"
    message = EmailMessage()
    message["From"] = f"Customer {n} <{address}>"
    message["To"] = "complaints@provider.example"
    message["Subject"] = f"Broadband keeps dropping ({run}/{n})"
    message["Message-ID"] = email.utils.make_msgid(domain="customers.example")
    message["Date"] = email.utils.format_datetime(datetime.now(UTC))
    message.set_content(
        "Hello,\n\nMy broadband has dropped every evening for two weeks. My account number is"
        f" 12345{n:03d} and my phone is 01632 960{n:03d}. Please fix it.\n\nRegards,\nCustomer\n"
    )
    return message.as_bytes(), address


# -- mailbot as a child process ----------------------------------------------------------------


def write_config(path: Path, *, imap_port: int, user: str, smtp_port: int, db: Path) -> None:
    # poll_seconds 60: only IMAP IDLE can make the latency figure fast
    path.write_text(
        sandbox_config(
            imap_port=imap_port,
            user=user,
            password=PASSWORD,
            smtp_port=smtp_port,
            database_url=f"sqlite:///{db}",
            poll_seconds=60,
            batch_size=BATCH_SIZE,
        )
    )


@dataclass
class Child:
    returncode: int
    seconds: float
    peak_rss_mb: float  # the process and its helpers, each at its own peak (an upper bound)
    cpu_seconds: float  # user + system, the process and its helpers
    stdout: str


def run_child(command: list[str], log: Path) -> Child:
    """Run COMMAND to its end; its wall time, CPU time and peak RSS (VmHWM of its own memory,
    summed over it and the helper processes it starts).

    Not ru_maxrss: Linux carries the parent's high-water mark across fork + exec into it.
    """
    started = time.monotonic()
    peaks: dict[int, int] = {}
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("ab") as err, tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=REPO)
        while process.poll() is None:
            for pid in family(process.pid):
                peaks[pid] = max(peaks.get(pid, 0), status_kb(pid, "VmHWM:"))
            time.sleep(0.02)
        seconds = time.monotonic() - started
        out.seek(0)
        text = out.read().decode()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return Child(process.returncode, seconds, sum(peaks.values()) / 1024, cpu, text)


def mailbot(config: Path, *args: str) -> list[str]:
    return [PYTHON, "-m", "mailbot", "--config", str(config), *args]


def db_count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        value: int = conn.execute(sql).fetchone()[0]
    return value


# -- the benchmarks -------------------------------------------------------------------------------


@dataclass
class Bench:
    work: Path
    dovecot: Dovecot
    sink: TimingSink
    smtp_port: int
    messages: int
    repeats: int

    def imap(self, user: str) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.dovecot.port, ssl=False)
        client.login(user, PASSWORD)
        return client

    def config(self, name: str, user: str) -> tuple[Path, Path]:
        folder = self.work / name
        folder.mkdir(parents=True, exist_ok=True)
        config, db = folder / "config.toml", folder / "mailbot.db"
        write_config(
            config, imap_port=self.dovecot.port, user=user, smtp_port=self.smtp_port, db=db
        )
        return config, db

    # latency ------------------------------------------------------------------------------------

    def latency(self) -> tuple[list[float], str]:
        """p95 APPEND -> SMTP DATA of 20 complaints, per run; a note if IDLE did not help."""
        results: list[float] = []
        for run in range(self.repeats):
            config, _db = self.config(f"latency{run}", "latency")
            log = self.work / f"latency{run}" / "daemon.log"
            log.touch()
            with log.open("ab") as err:
                daemon = subprocess.Popen(mailbot(config, "run"), stderr=err, cwd=REPO)
            try:
                wait_for_text(log, "mailbot started", 30)
                time.sleep(2.0)  # the first cycle, and the IDLE connection, settle
                samples: list[float] = []
                missed = False
                for n in range(20):
                    raw, address = complaint(n, run)
                    with self.imap("latency") as client:
                        started = time.monotonic()
                        client.append("INBOX", raw)
                    arrived = self.sink.wait_for(address, LATENCY_TIMEOUT)
                    if arrived is None:  # no IDLE: the next poll brings it, up to 60 s later
                        arrived = self.sink.wait_for(address, 70.0)
                        missed = True
                    if arrived is None:
                        samples.append(math.inf)
                        break
                    samples.append(arrived - started)
                    if missed:
                        break
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=30)
            ordered = sorted(samples)
            p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
            if missed:
                note = (
                    f"ack {len(samples)} took {samples[-1]:.1f} s (> {LATENCY_TIMEOUT:.0f} s):"
                    " the daemon waited for its 60 s poll, IDLE did not wake it; later runs"
                    " skipped"
                )
                return [samples[-1]], note
            results.append(p95)
            print(f"  latency run {run + 1}: p95 {p95:.3f} s, max {ordered[-1]:.3f} s")
        return results, ""

    # throughput -----------------------------------------------------------------------------------

    def load_backlog(self) -> int:
        backlog = build_backlog(self.messages, reply_share=0.30)
        total = sum(len(m) for m in backlog)
        with self.imap("drain") as client:
            client.create_folder(BACKLOG_FOLDER)
            for start in range(0, len(backlog), 200):
                client.multiappend(BACKLOG_FOLDER, backlog[start : start + 200])
        return total

    def refill_inbox(self) -> None:
        with self.imap("drain") as client:
            client.select_folder(BACKLOG_FOLDER, readonly=True)
            uids = client.search(["ALL"])
            client.copy(uids, "INBOX")

    def drain(self, run: int, profile: Path | None = None) -> tuple[float, float, float]:
        """mailbot `run --once` over the backlog: (messages/s end to end, messages/s from the
        first message processed to the last, peak RSS MB)."""
        self.refill_inbox()
        self.sink.clear()
        config, db = self.config(f"drain{run}", "drain")
        command = mailbot(config, "run", "--once")
        if profile is not None:
            command[1:1] = ["-m", "cProfile", "-o", str(profile)]
        child = run_child(command, self.work / f"drain{run}" / "mailbot.log")
        stored = db_count(db, "SELECT count(*) FROM inbound WHERE disposition != 'RECEIVED'")
        queued = db_count(db, "SELECT count(*) FROM outbound WHERE status = 'QUEUED'")
        if child.returncode != 0 or stored != self.messages:
            raise SystemExit(
                f"bench: drain {run} exit {child.returncode}, {stored}/{self.messages} processed"
                f" (log: {self.work / f'drain{run}' / 'mailbot.log'})"
            )
        processing = self.messages / processing_seconds(self.work / f"drain{run}" / "mailbot.log")
        print(
            f"  drain run {run + 1}: {self.messages} in {child.seconds:.1f} s"
            f" = {self.messages / child.seconds:.1f}/s ({processing:.1f}/s first to last message),"
            f" {self.sink.count()} mails sent ({queued} left queued),"
            f" peak RSS {child.peak_rss_mb:.0f} MB, CPU {child.cpu_seconds:.1f} s"
        )
        return self.messages / child.seconds, processing, child.peak_rss_mb

    def floor(self, run: int) -> float:
        """imapclient fetch + stdlib parse + one committed SQLite row per message: messages/s."""
        with self.imap("drain") as client:
            client.normalise_times = False
            seconds, _cpu, done = floor(client, self.work / f"floor{run}.db")
        print(f"  floor run {run + 1}: {done} in {seconds:.1f} s = {done / seconds:.1f}/s")
        return done / seconds

    # the tick ---------------------------------------------------------------------------------

    def tick_template(self, name: str, due: int) -> Path:
        config, _db = self.config(name, "drain")
        result = run_child(
            [PYTHON, "-m", "bench.tickjob", "build", str(config), TICK_NOW.isoformat(), str(due)],
            self.work / name / "build.log",
        )
        if result.returncode != 0:
            raise SystemExit(f"bench: building {name} failed, see {self.work / name}")
        return config

    def tick(self, template: Path, run: int) -> tuple[float, float, str]:
        """One tick in a child on a copy of TEMPLATE's database: (seconds, peak RSS MB, what)."""
        name = f"{template.parent.name}-run{run}"
        config, db = self.config(name, "drain")
        shutil.copy(template.parent / "mailbot.db", db)
        child = run_child(
            [PYTHON, "-m", "bench.tickjob", "tick", str(config), TICK_NOW.isoformat()],
            self.work / name / "tick.log",
        )
        if child.returncode != 0:
            raise SystemExit(f"bench: tick failed, see {self.work / name / 'tick.log'}")
        report = json.loads(child.stdout)
        print(
            f"  tick {template.parent.name} run {run + 1}: {report['seconds']:.3f} s,"
            f" {report['cases']} case(s), {report['queued']} letter(s) queued {report['done']},"
            f" peak RSS {child.peak_rss_mb:.0f} MB"
        )
        db.unlink()
        return float(report["seconds"]), child.peak_rss_mb, str(report["done"])


def processing_seconds(log: Path) -> float:
    """From the first message's log line to the last one's (most sends go meanwhile)."""
    stamps = [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in log.read_text().splitlines()
        if " uid=" in line
    ]
    return max((stamps[-1] - stamps[0]).total_seconds(), 1e-3) if stamps else float("inf")


def wait_for_text(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise SystemExit(f"bench: no {text!r} in {path} after {timeout:.0f} s")


# -- the table ----------------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    target: str
    measured: str
    ratio: float | None  # >= 1 means the target is met

    def cells(self) -> list[str]:
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}"
        if self.ratio is not None:
            ratio += "  ok" if self.ratio >= 1 else "  MISSED"
        return [self.figure, self.target, self.measured, ratio]


def print_table(rows: list[Row]) -> None:
    header = ["figure", "target", "measured (median of runs)", "ratio (>= 1 met)"]
    table = [header, *[r.cells() for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(4)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in table[1:]:
        print(line(cells))


def at_most(figure: str, target: float, measured: float, unit: str) -> Row:
    ratio = target / measured if measured > 0 else math.inf
    return Row(figure, f"< {target:g} {unit}", f"{measured:.3g} {unit}", ratio)


def at_least(figure: str, target: float, measured: float, unit: str) -> Row:
    return Row(figure, f">= {target:g} {unit}", f"{measured:.3g} {unit}", measured / target)


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    options.add_argument("--messages", type=int, default=5000, help="backlog size (5000)")
    options.add_argument("--repeats", type=int, default=3, help="runs of each figure (3)")
    options.add_argument(
        "--only",
        choices=("latency", "drain", "tick"),
        action="append",
        help="run only these benchmarks (repeatable)",
    )
    options.add_argument(
        "--profile", action="store_true", help="also print a cProfile top-15 of run --once"
    )
    options.add_argument("--keep", action="store_true", help="keep the work directory")
    args = options.parse_args(argv)
    only = set(args.only or ("latency", "drain", "tick"))

    work = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    dovecot = Dovecot({"latency": PASSWORD, "drain": PASSWORD})
    sink = TimingSink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    started = time.monotonic()
    rows: list[Row] = []
    try:
        dovecot.start()
        controller.start()
        bench = Bench(work, dovecot, sink, smtp_port, args.messages, args.repeats)
        if "latency" in only:
            print("latency: 20 complaints, one at a time, to a running daemon (poll_seconds=60)")
            p95s, note = bench.latency()
            row = at_most("ack latency p95, APPEND -> SMTP DATA", 2.0, statistics.median(p95s), "s")
            rows.append(row)
            if note:
                print(f"  {note}")
        if "drain" in only:
            print(f"throughput: building a backlog of {args.messages} messages")
            size = bench.load_backlog()
            print(
                f"  {size / 1e6:.0f} MB in {BACKLOG_FOLDER},"
                f" {size / args.messages / 1e3:.1f} kB per message"
            )
            rates: list[float] = []
            processing: list[float] = []
            rss: list[float] = []
            floors: list[float] = []
            for run in range(args.repeats):
                rate, processed, peak = bench.drain(run)
                rates.append(rate)
                processing.append(processed)
                rss.append(peak)
                floors.append(bench.floor(run))
            ratios = [r / f for r, f in zip(rates, floors, strict=True)]
            rows.append(
                at_least("drain throughput (run --once)", 200, statistics.median(rates), "msg/s")
            )
            rows.append(
                Row(
                    "  processing: first to last message",
                    "-",
                    f"{statistics.median(processing):.3g} msg/s",
                    None,
                )
            )
            rows.append(
                Row(
                    "floor: imapclient+email+sqlite",
                    "-",
                    f"{statistics.median(floors):.3g} msg/s",
                    None,
                )
            )
            rows.append(at_least("mailbot / floor", 0.40, statistics.median(ratios), "x"))
            rows.append(
                at_most("peak RSS, draining (daemon + children)", 200, statistics.median(rss), "MB")
            )
        if "tick" in only:
            print("tick: 100,000 open cases (building the databases is not timed)")
            quiet = bench.tick_template("tick-quiet", 0)
            busy = bench.tick_template("tick-due", 1000)
            quiet_runs = [bench.tick(quiet, run) for run in range(args.repeats)]
            busy_runs = [bench.tick(busy, run) for run in range(args.repeats)]
            rows.append(
                at_most(
                    "tick, 100k cases, none due",
                    0.5,
                    statistics.median(r[0] for r in quiet_runs),
                    "s",
                )
            )
            rows.append(
                at_most(
                    "tick, 100k cases, 1,000 due",
                    5.0,
                    statistics.median(r[0] for r in busy_runs),
                    "s",
                )
            )
            rss_tick = statistics.median(
                max(q[1], b[1]) for q, b in zip(quiet_runs, busy_runs, strict=True)
            )
            rows.append(at_most("peak RSS, ticking process", 200, rss_tick, "MB"))
        if args.profile and "drain" in only:
            profile = work / "drain.prof"
            bench.drain(args.repeats, profile)
            import pstats

            stats = pstats.Stats(str(profile))
            print("\ncProfile of `mailbot run --once` on the backlog, top 15 by cumulative time:")
            stats.sort_stats("cumulative").print_stats(15)
            print("top 15 by own time:")
            stats.sort_stats("tottime").print_stats(15)
    finally:
        controller.stop()
        dovecot.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(rows)
    print(f"\n{os.cpu_count()} CPU(s), {cpu_model()}; {time.monotonic() - started:.0f} s in all")
    return 0 if all(r.ratio is None or r.ratio >= 1 for r in rows) else 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"
