"""Show mailbot's main job with no outside mail account: samples in, cases and replies out."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

from sandbox import Dovecot, SmtpSink, sandbox_config

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def mailbot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mailbot", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True)


def main() -> int:
    dovecot = Dovecot({"complaints": "demo-secret"})
    sink = SmtpSink()
    dovecot.start()
    sink.start()
    work = Path(tempfile.mkdtemp(prefix="mailbot-demo-"))
    config = work / "config.toml"
    config.write_text(
        sandbox_config(
            imap_port=dovecot.port,
            user="complaints",
            password="demo-secret",
            smtp_port=sink.port,
            database_url=f"sqlite:///{work}/mailbot.db",
        )
    )
    try:
        samples = sorted(SAMPLES.glob("*.eml"))
        with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False) as client:
            client.login("complaints", "demo-secret")
            for sample in samples:
                client.append("INBOX", sample.read_bytes().replace(b"\n", b"\r\n"))
        print(f"Dropped {len(samples)} sample messages into the complaints mailbox.")
        log = (work / "mailbot.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(config), "run"], stderr=log
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.5)
            with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False) as client:
                client.login("complaints", "demo-secret")
                waiting = client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"]
            cases = json.loads(mailbot(config, "cases", "--json").stdout)
            queued = [o for c in cases for o in c["outbound"] if o["status"] == "queued"]
            if waiting == 0 and not queued and cases:
                break
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()
        print("\n== What the daemon logged ==")
        print((work / "mailbot.log").read_text().rstrip())
        print("\n== Cases (mailbot cases) ==")
        print(mailbot(config, "cases").stdout.rstrip())
        for case in cases:
            print(f"\n== mailbot show {case['ref']} ==")
            print(mailbot(config, "show", case["ref"]).stdout.rstrip())
        print(f"\n== Mail the SMTP server received: {len(sink.received)} ==")
        for envelope in sink.received:
            print(f"To: {', '.join(envelope.rcpt_tos)}  Subject: {envelope.message['Subject']}")
        if sink.received:
            print("\n== The first acknowledgement, as the customer reads it ==")
            print(sink.received[0].text.rstrip())
        print(f"\nDatabase and log kept in {work}")
        return 0 if daemon.returncode == 0 else 1
    finally:
        sink.stop()
        dovecot.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
