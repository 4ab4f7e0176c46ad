"""The procedure's tick: run whatever is due on the cases whose next due time has come."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from mailbot.casework import Casework
from mailbot.outbox import CLAIM
from mailbot.procedure.rules import Due
from mailbot.store.models import Case

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    cases: int = 0  # cases looked at (their next due time had come)
    done: dict[str, int] = field(default_factory=dict)  # what was done, by kind

    def describe(self) -> str:
        what = ", ".join(f"{k}={v}" for k, v in sorted(self.done.items())) or "nothing due"
        return f"tick: {self.cases} case(s) due: {what}"


BATCH = 100  # cases per commit: one fsync for the lot, not one per case


def tick(engine: Engine, casework: Casework, now: datetime) -> TickReport:
    """Run what is due, a batch of cases per transaction: case changes and letters together."""
    report = TickReport()
    with Session(engine) as session:
        due_ids = session.exec(
            select(Case.id).where(col(Case.next_due_at) <= now).order_by(col(Case.next_due_at))
        ).all()
    for start in range(0, len(due_ids), BATCH):
        batch = [i for i in due_ids[start : start + BATCH] if i is not None]
        try:
            done = _run(engine, casework, now, batch)
        except Exception:  # one case's failure must not hold back the others: one at a time
            log.exception("tick batch failed; running its %d cases one by one", len(batch))
            done = []
            for case_id in batch:
                try:
                    done += _run(engine, casework, now, [case_id])
                except Exception:
                    log.exception("tick failed for case id %d; retried at the next tick", case_id)
        for ref, what in done:
            report.cases += 1
            for kind in what:
                report.done[kind] = report.done.get(kind, 0) + 1
            if what:
                log.info("case=%s rules: %s", ref, ", ".join(what))
    return report


def _run(
    engine: Engine, casework: Casework, now: datetime, case_ids: list[int]
) -> list[tuple[str, list[Due]]]:
    done = []
    with Session(engine) as session:
        for case_id in case_ids:
            case = session.get(Case, case_id, with_for_update=CLAIM)
            if case is None or case.next_due_at is None or case.next_due_at > now:
                continue  # another daemon has it, or it changed meanwhile
            done.append((case.ref, casework.run_due(session, case)))
        session.commit()
    return done
