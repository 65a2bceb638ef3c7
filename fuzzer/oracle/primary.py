"""One sample per diverging step: its primary divergence, and the others filed under it.

One bug often shows several symptoms at once (a lost VM_LOCKED is a `lock`
divergence and a `vmlck` one). Bucketing each would open one bucket per
symptom, so the divergences of a step are filed under the first in
PRECEDENCE (kind.py), and the rest are kept with that sample (Sample.symptoms).

The precedence goes from what the call itself did to what it left behind, and
from state to accounting, since accounting follows state: the executor dying or
hanging; the call's result and signal; then pages mapped or not, their
protection, lock flags, fork flags and presence; then VMA boundaries; then the
counters (smaps Locked, Rss/Pss, VmLck).
"""

from __future__ import annotations

from collections.abc import Iterable

from fuzzer.oracle.divergence import Divergence
from fuzzer.oracle.kind import PRECEDENCE

RANK = {kind: i for i, kind in enumerate(PRECEDENCE)}


def primary_first(divergences: Iterable[Divergence]) -> list[Divergence]:
    """The divergences by PRECEDENCE (stable: equal kinds keep their order)."""
    return sorted(divergences, key=lambda d: RANK[d.kind])


def by_primary(divergences: Iterable[Divergence]) -> list[tuple[Divergence, list[Divergence]]]:
    """Per diverging step (in step order): its primary divergence and the others."""
    steps: dict[int, list[Divergence]] = {}
    for d in divergences:
        steps.setdefault(d.step, []).append(d)
    out = []
    for step in sorted(steps):
        first, *rest = primary_first(steps[step])
        out.append((first, rest))
    return out


__all__ = ["PRECEDENCE", "by_primary", "primary_first"]
