"""What a campaign's semantic coverage was, from its stored corpus entries (pure).

Each corpus entry holds the features its program reached first in its worker
(fuzzer/check/coverage.py), stamped with the time it was stored: the distinct
features over a campaign's entries are what it reached, and their running
count against the campaign's running time (since it started, less the pauses
between the runs of a resumed campaign) is its growth.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from fuzzer.check.coverage import PAIR, feature_call
from fuzzer.prog.syscalls import SYSCALLS

# Where `stats coverage` shows the growth, in seconds since the start (and at the end).
CHECKPOINTS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)


@dataclass(frozen=True)
class CoverageSummary:
    features: int  # distinct features reached
    events: int  # of them, single events
    pairs: int  # ... and pairs of events
    by_call: dict[str, tuple[int, int]]  # call -> (events, pairs), in syscall-table order
    growth: list[tuple[float, int]]  # (seconds since the start, features by then), rising


def summary(entries: Iterable[tuple[datetime, list[str]]],
            clock: Callable[[datetime], float] | None = None) -> CoverageSummary:
    """Entries as (time stored, features), oldest first; growth on the campaign's `clock`,
    its seconds at a moment (CampaignRow.seconds: its running time, one axis across
    the runs of a resumed campaign); none without one: over several campaigns it
    would mean nothing."""
    seen: set[str] = set()
    growth: list[tuple[float, int]] = []
    for when, features in entries:
        before = len(seen)
        seen.update(features)
        if clock is not None and len(seen) > before:
            at = round(max(0.0, clock(when)), 1)
            if growth and growth[-1][0] == at:
                growth[-1] = (at, len(seen))
            else:
                growth.append((at, len(seen)))
    return of_features(seen, growth)


def of_features(features: Iterable[str],
                growth: list[tuple[float, int]] | None = None) -> CoverageSummary:
    """A set of features, counted by call (a pair by its second call)."""
    seen = set(features)
    events: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for feature in seen:
        (pairs if PAIR in feature else events)[feature_call(feature)] += 1
    order = {name: i for i, name in enumerate(SYSCALLS)}
    calls = sorted(events.keys() | pairs.keys(), key=lambda c: (order.get(c, len(order)), c))
    return CoverageSummary(
        features=len(seen), events=sum(events.values()), pairs=sum(pairs.values()),
        by_call={c: (events[c], pairs[c]) for c in calls}, growth=growth or [])


def at_checkpoints(growth: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """The growth at each checkpoint up to its last point, and at that point."""
    if not growth:
        return []
    end = growth[-1][0]
    shown = [(float(t), reached(growth, t)) for t in CHECKPOINTS if t < end]
    return [*shown, growth[-1]]


def reached(growth: list[tuple[float, int]], seconds: float) -> int:
    """Features reached by `seconds` after the start."""
    return max((n for t, n in growth if t <= seconds), default=0)
