"""Back-off after failures: capped exponential delays with jitter, on a clock the caller reads."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

Delay = TypeVar("Delay", float, timedelta)


def capped_delay(failures: int, first: Delay, longest: Delay) -> Delay:
    """FIRST after one failure, doubling with each further one, never more than LONGEST."""
    delay: Delay = first * 2 ** max(failures - 1, 0)
    return min(delay, longest)


@dataclass
class Backoff:
    """When to try something again that keeps failing; times are seconds on the caller's clock
    (time.monotonic() in the daemon), passed in."""

    first: float = 1.0
    longest: float = 300.0
    jitter: random.Random = field(default_factory=random.Random)
    failures: int = 0
    retry_at: float = 0.0

    def ready(self, now: float) -> bool:
        """True unless backing off at NOW."""
        return self.failures == 0 or now >= self.retry_at

    def failed(self, now: float) -> float:
        """Count a failure at NOW; the delay before the next try."""
        self.failures += 1
        # jitter: daemons restarted together do not retry in step
        delay = capped_delay(self.failures, self.first, self.longest)
        delay *= self.jitter.uniform(0.5, 1.0)
        self.retry_at = now + delay
        return delay

    def succeeded(self) -> int:
        """Start again from the first delay; how many failures there had been."""
        failures, self.failures, self.retry_at = self.failures, 0, 0.0
        return failures
