"""Child process of the tick benchmark.

`python -m bench.tickjob build CONFIG NOW DUE`: 100,000 open cases in CONFIG's database,
DUE of them due at NOW, the rest far in the future (bulk insert, not timed).
`python -m bench.tickjob tick CONFIG NOW`: one `mailbot.timers.run_timers` at NOW via build_app;
prints {"seconds", "cases", "done", "queued"} as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, SQLModel, col, select

from mailbot.app import build_app
from mailbot.config import load_settings
from mailbot.store.models import CaseStatus, Level, Outbound
from mailbot.timers import run_timers

CASES = int(__import__("os").environ.get("BENCH_CASES", 100_000))


def case_row(n: int, now: datetime, due: bool) -> dict[str, Any]:
    # a due case: two weeks old, no staff reply, nothing sent: R2, R3 and R4 all come due
    received = now - (timedelta(days=14) if due else timedelta(hours=n % 500))
    return {
        "ref": f"CMP-2026-{n:06d}",
        "customer_email": f"customer{n:06d}@customers.example",
        "customer_name": f"Customer {n}",
        "subject": f"Complaint {n}",
        "received_at": received,
        "status": CaseStatus.OPEN,
        "level": Level.TEAM_LEADER,
        "details_found": "",
        "first_response_due": received + timedelta(days=1),
        "adr_date": received + timedelta(weeks=8),
        "update_interval_days": 1,
        "update_interval_agreed_by": "",
        "flags": "",
        "resolution_summary": "",
        "reopened_from": "",
        "adr_notice_decision": "",
        "deadlock_position": "",
        "next_due_at": now - timedelta(minutes=1) if due else now + timedelta(days=365),
    }


def build(config: Path, now: datetime, due: int) -> None:
    app = build_app(load_settings(config), lambda: now)
    table = SQLModel.metadata.tables["case"]
    chunk = 10_000
    with app.engine.begin() as conn:
        for start in range(1, CASES + 1, chunk):
            rows = [
                case_row(n, now, n % (CASES // due) == 0 if due else False)
                for n in range(start, min(start + chunk, CASES + 1))
            ]
            conn.execute(insert(table), rows)
    app.engine.dispose()


def run_tick(config: Path, now: datetime) -> None:
    app = build_app(load_settings(config), lambda: now)
    started = time.perf_counter()
    report = run_timers(app.engine, app.casefile, now)
    seconds = time.perf_counter() - started
    with Session(app.engine) as session:
        queued = session.exec(select(func.count(col(Outbound.id)))).one()
    app.engine.dispose()
    done = dict(sorted(report.done.items()))
    result = {"seconds": seconds, "cases": report.cases, "done": done, "queued": queued}
    print(json.dumps(result))


def main(argv: list[str]) -> int:
    command, config, now = argv[0], Path(argv[1]), datetime.fromisoformat(argv[2])
    if command == "build":
        build(config, now, int(argv[3]))
    else:
        run_tick(config, now)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
