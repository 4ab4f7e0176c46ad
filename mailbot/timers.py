"""The procedure's timers: run whatever is due on the cases whose next due time has come."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from mailbot.apply import Casefile
from mailbot.procedure.rules import Due
from mailbot.store import db
from mailbot.store.connection import DatabaseFailed
from mailbot.store.db import Engine, Session
from mailbot.store.personal import lock_cases
from mailbot.store.timers import cases_set_aside, claim_case, due_cases, set_case_aside

log = logging.getLogger(__name__)


@dataclass
class TimersReport:
    cases: int = 0  # cases looked at (their next due time had come)
    done: dict[str, int] = field(default_factory=dict)  # what was done, by kind
    set_aside: list[str] = field(default_factory=list)  # cases that raised, by reference

    def describe(self) -> str:
        what = ", ".join(f"{k}={v}" for k, v in sorted(self.done.items())) or "nothing due"
        aside = f"; set aside: {', '.join(self.set_aside)}" if self.set_aside else ""
        return f"tick: {self.cases} case(s) due: {what}{aside}"


BATCH = 100  # cases per commit: one fsync for the lot, not one per case


def run_timers(engine: Engine, casefile: Casefile, now: datetime) -> TimersReport:
    """Run what is due, a batch of cases per transaction: case changes and letters together."""
    report = TimersReport()
    with Session(engine) as session:
        due_ids = due_cases(session, now)
    for start in range(0, len(due_ids), BATCH):
        batch = due_ids[start : start + BATCH]
        try:
            done = _run(engine, casefile, now, batch)
        except Exception:  # one case's failure must not hold back the others: one at a time
            log.exception("tick batch failed; running its %d cases one by one", len(batch))
            done = []
            for case_id in batch:
                try:
                    done += _run(engine, casefile, now, [case_id])
                except DatabaseFailed:  # the database's fault, not the case's
                    log.exception("tick failed for case id %d; retried at the next tick", case_id)
                except Exception as error:  # the case's: once, not again every tick
                    log.exception("tick failed for case id %d", case_id)
                    ref = set_aside(engine, casefile, case_id, error)
                    if ref is not None:
                        report.set_aside.append(ref)
        for ref, what in done:
            report.cases += 1
            for kind in what:
                report.done[kind] = report.done.get(kind, 0) + 1
            if what:
                log.info("case=%s rules: %s", ref, ", ".join(what))
    return report


def set_aside(engine: Engine, casefile: Casefile, case_id: int, error: Exception) -> str | None:
    """Take a case whose procedure raised out of the tick, until an admin puts it back.

    Its reason is kept on the case, with an event, and the admins are told once. Plain
    statements: the case's row may be what broke. Returns its reference (None if even
    this failed: the next tick tries the case again).
    """
    lines = str(error).strip().splitlines()
    reason = f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]
    try:
        with Session(engine) as session:
            ref = set_case_aside(session, case_id, reason)
            at = casefile.clock()
            db.record_event(session, case_id, at, "mailbot", "set aside", reason)
            casefile.outbox.alert(
                session,
                f"case {ref} set aside by the tick",
                f"The procedure's timers raised an error on case {ref}: {reason}\n\n"
                "No update, escalation, ADR notice or deadlock letter goes on it until an "
                "admin puts it back; mail about the case is still received and threaded. "
                "The log has the traceback. After a fix: mailbot tick --retry-set-aside",
            )
            session.commit()
    except Exception:
        log.exception("could not set case id %d aside; retried at the next tick", case_id)
        return None
    log.error("case=%s set aside by the tick: %s", ref, reason)
    return ref


def retry_set_aside(engine: Engine, now: datetime) -> list[str]:
    """Put every case the tick set aside back in it, due at once (after a fix)."""
    with Session(engine) as session:
        cases = cases_set_aside(session)
        lock_cases(session, cases)  # PostgreSQL: each case's chain has one writer at a time
        for case in cases:
            assert case.id is not None
            db.record_event(
                session, case.id, now, "admin", "put back in the tick", case.set_aside_reason
            )
            case.set_aside_reason, case.next_due_at = "", now
            session.add(case)
        session.commit()
        return [case.ref for case in cases]


def _run(
    engine: Engine, casefile: Casefile, now: datetime, case_ids: list[int]
) -> list[tuple[str, list[Due]]]:
    done = []
    with Session(engine) as session:
        for case_id in case_ids:
            case = claim_case(session, case_id)
            if case is None or case.next_due_at is None or case.next_due_at > now:
                continue  # another daemon has it, or it changed meanwhile
            done.append((case.ref, casefile.run_due(session, case)))
        session.commit()
    return done
