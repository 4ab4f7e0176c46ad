"""Outages: each server backs off on its own, so one being down never stops the other's work."""

from __future__ import annotations

import random
from datetime import timedelta

from mailbot.backoff import Backoff, capped_delay

# The back-off itself: pure, on a clock passed in


def test_each_failure_doubles_the_delay_up_to_the_cap() -> None:
    delays = [capped_delay(n, 1.0, 300.0) for n in range(1, 12)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert capped_delay(3, timedelta(minutes=1), timedelta(hours=1)) == timedelta(minutes=4)


def test_jitter_waits_between_half_and_all_of_each_delay() -> None:
    backoff = Backoff(first=1.0, longest=300.0, jitter=random.Random(20261123))
    for failures in range(1, 40):
        now = 1000.0 * failures
        delay = backoff.failed(now)
        full = capped_delay(failures, 1.0, 300.0)
        assert full / 2 <= delay <= full
        assert backoff.retry_at == now + delay
        assert not backoff.ready(now + delay / 2)
        assert backoff.ready(now + delay)


def test_a_success_starts_the_back_off_again_from_the_first_delay() -> None:
    backoff = Backoff(first=1.0, longest=300.0)
    for n in range(6):
        backoff.failed(float(n))
    assert not backoff.ready(5.0)
    assert backoff.succeeded() == 6
    assert backoff.ready(5.0)
    assert backoff.failed(5.0) <= 1.0
    assert backoff.succeeded() == 1 and backoff.succeeded() == 0
