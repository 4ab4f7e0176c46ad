"""`mailbot audit verify`: every case's chain of records recomputed, and where one breaks."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailbot.mail.chain import Break, check
from mailbot.store.chain import case_chain, chained_case_ids
from mailbot.store.db import Session


@dataclass
class Verified:
    """What a verification found: the cases and links read, and each case whose chain broke."""

    cases: int = 0
    links: int = 0
    broken: list[tuple[str, Break]] = field(default_factory=list)

    def summary(self) -> str:
        if not self.broken:
            return f"audit verify: {self.cases} case(s), {self.links} record(s) chained: all hold"
        return (
            f"audit verify: {len(self.broken)} of {self.cases} case(s) broken "
            f"({self.links} record(s) chained)"
        )


def verify(session: Session, ref: str | None = None) -> Verified:
    """Recompute the chain of REF's case (None: every case)."""
    found = Verified()
    for case_id, case_ref in chained_case_ids(session, ref):
        links, unchained = case_chain(session, case_id)
        found.cases += 1
        found.links += len(links)
        broken = check(links, unchained)
        if broken is not None:
            found.broken.append((case_ref, broken))
    return found
