"""`python -m bench.bounces`: failed recipients read by mailbot.mail.bounce and by flufl.bounce.

Every labelled bounce in ../shared/corpus/flufl.bounce (Mailman's detector test data,
labels.json) goes through both readers. Per message: were the labelled addresses all found,
was exactly that set found (nothing else blamed), was each one's permanent/temporary right.
A message with two labelled detectors (groupwise_02) expects the union of their addresses.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flufl.bounce import all_failures

from mailbot.mail.bounce import read_bounce
from tests.corpus import corpus_dir

DATA = "flufl.bounce/flufl/bounce/tests/data"

# What a reader found in one bounce: failed address -> permanent?
Found = dict[str, bool]


@dataclass(frozen=True)
class Labelled:
    """One labelled bounce: the failed addresses and whether each failure is permanent."""

    name: str
    raw: bytes
    expected: dict[str, bool]


@dataclass
class Score:
    """How one reader did over the corpus."""

    reader: str
    found_all: int = 0  # every labelled address among those found
    exact: int = 0  # the labelled set and nothing else
    permanence: int = 0  # every labelled address found, each permanent/temporary right
    exact_and_right: int = 0
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)


def labelled_bounces() -> list[Labelled]:
    labels = json.loads((corpus_dir() / "flufl.bounce" / "labels.json").read_text())
    bounces: list[Labelled] = []
    for name, entry in sorted(labels["samples"].items()):
        expected: dict[str, bool] = {}
        for expectation in entry["expectations"]:
            for address in expectation["expected_addresses"]:
                expected[address.lower()] = expectation["failure"] == "permanent"
        if expected:
            raw = (corpus_dir() / DATA / name).read_bytes()
            bounces.append(Labelled(name, raw, expected))
    return bounces


def ours(raw: bytes) -> Found:
    return {r.address: r.permanent for r in read_bounce(raw).recipients}


def flufl(raw: bytes) -> Found:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    temporary, permanent = all_failures(message)
    found = {address.decode("ascii").lower(): False for address in temporary}
    found.update({address.decode("ascii").lower(): True for address in permanent})
    return found


def score(reader: str, read: Callable[[bytes], Found], bounces: list[Labelled]) -> Score:
    result = Score(reader)
    for bounce in bounces:
        started = time.perf_counter()
        found = read(bounce.raw)
        result.seconds += time.perf_counter() - started
        found_all = bounce.expected.keys() <= found.keys()
        exact = bounce.expected.keys() == found.keys()
        right = found_all and all(found[a] is p for a, p in bounce.expected.items())
        result.found_all += found_all
        result.exact += exact
        result.permanence += right
        result.exact_and_right += exact and right
        if not (exact and right):
            result.misses.append(f"{bounce.name}: expected {bounce.expected}, found {found}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--misses", action="store_true", help="list every message not exact")
    args = parser.parse_args(argv)
    bounces = labelled_bounces()
    scores = [score("mailbot.mail.bounce", ours, bounces), score("flufl.bounce", flufl, bounces)]
    total = len(bounces)
    print(f"{total} labelled bounces (per message)")
    print(
        f"{'reader':<20} {'all found':>10} {'exact set':>10} {'perm/temp':>10} "
        f"{'exact+right':>12} {'ms/msg':>7}"
    )
    for s in scores:
        print(
            f"{s.reader:<20} {s.found_all:>6}/{total} {s.exact:>6}/{total} "
            f"{s.permanence:>6}/{total} {s.exact_and_right:>8}/{total} "
            f"{1000 * s.seconds / total:>7.2f}"
        )
    if args.misses:
        for s in scores:
            print(f"\n{s.reader}: {len(s.misses)} not exact and right")
            for miss in s.misses:
                print(f"  {miss}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
