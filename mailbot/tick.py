"""The procedure's tick: run whatever is due on the cases whose next due time has come."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from mailbot.casework import Casework
from mailbot.store.models import Case

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    cases: int = 0  # cases looked at (their next due time had come)
    done: dict[str, int] = field(default_factory=dict)  # what was done, by kind

    def describe(self) -> str:
        what = ", ".join(f"{k}={v}" for k, v in sorted(self.done.items())) or "nothing due"
        return f"tick: {self.cases} case(s) due: {what}"


def tick(engine: Engine, casework: Casework, now: datetime) -> TickReport:
    """Each due case in its own transaction: its changes and its letters commit together."""
    report = TickReport()
    with Session(engine) as session:
        due_ids = session.exec(
            select(Case.id).where(col(Case.next_due_at) <= now).order_by(col(Case.next_due_at))
        ).all()
    for case_id in due_ids:
        with Session(engine) as session:
            case = session.get(Case, case_id)
            if case is None or case.next_due_at is None or case.next_due_at > now:
                continue  # changed meanwhile
            done = casework.run_due(session, case)
            session.commit()
            report.cases += 1
            for what in done:
                report.done[what] = report.done.get(what, 0) + 1
            if done:
                log.info("case=%s rules: %s", case.ref, ", ".join(done))
    return report
