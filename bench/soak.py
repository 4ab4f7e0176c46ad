"""The soak: the daemon under a steady trickle of complaints; its memory sampled each minute.

`python -m bench.soak [--minutes 30] [--every 2.0]`: Dovecot and an SMTP sink, `mailbot run`
(IDLE, ticking every 60 s), one complaint APPENDed every EVERY seconds; prints VmRSS each
minute and the growth from the first sample to the last.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

from bench.main import PASSWORD, complaint, write_config
from sandbox import Dovecot, SmtpSink


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--minutes", type=float, default=30.0)
    options.add_argument("--every", type=float, default=2.0, help="seconds between complaints")
    args = options.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mailbot-soak-"))
    dovecot, sink = Dovecot({"soak": PASSWORD}), SmtpSink()
    dovecot.start()
    sink.start()
    config = work / "config.toml"
    write_config(
        config, imap_port=dovecot.port, user="soak", smtp_port=sink.port, db=work / "mailbot.db"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(config), "run"],
        stderr=(work / "daemon.log").open("wb"),
    )
    samples: list[float] = []
    try:
        with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False) as client:
            client.login("soak", PASSWORD)
            started = time.monotonic()
            n, next_sample = 0, started + 60
            while time.monotonic() - started < args.minutes * 60:
                client.append("INBOX", complaint(n, 0)[0])
                n += 1
                time.sleep(args.every)
                if time.monotonic() >= next_sample:
                    samples.append(rss_mb(daemon.pid))
                    print(
                        f"minute {len(samples):>3}: {n} complaints, {len(sink.received)} "
                        f"mails sent, VmRSS {samples[-1]:.1f} MB",
                        flush=True,
                    )
                    next_sample += 60
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        sink.stop()
        dovecot.cleanup()
    if samples:
        print(
            f"VmRSS first {samples[0]:.1f} MB, last {samples[-1]:.1f} MB, "
            f"max {max(samples):.1f} MB; growth {samples[-1] - samples[0]:+.1f} MB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
