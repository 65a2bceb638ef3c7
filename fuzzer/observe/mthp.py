"""The host's anonymous mTHP fault counters and khugepaged's collapse counter (sysfs),
read around a checked program.

A large folio's allocation can fail (no free block of its order, or the memory
cgroup's charge), and alloc_anon_folio then falls back to the next enabled order,
or one page, without a word: only hugepages-<N>kB/stats/anon_fault_fallback (and
_fallback_charge) of the order that failed move. The model always predicts the
order that fits (docs/SEMANTICS.md §19), so a divergence in a program during which
those counters moved is marked as such (check/program.py), never dropped. The
counters are the whole machine's: another process's fallback marks ours too.

khugepaged collapses, in the background, a 2 MiB region of a VM_HUGEPAGE VMA into a
new huge page mapped by a PMD, at times no model can know (docs/SEMANTICS.md §22: not
modelled). Only the huge arena holds such a region; there a divergence in a program
during which khugepaged's `pages_collapsed` moved is marked the same way.
"""

from __future__ import annotations

from fuzzer.model.features import mthp_sizes_kb
from fuzzer.observe.probe import THP_SYSFS

FALLBACK_STATS = ("anon_fault_fallback", "anon_fault_fallback_charge")
FELL_BACK = " [mTHP fell back]"  # ends such a divergence's title: a bucket apart
FELL_BACK_WHY = ("hugepages-*/stats/anon_fault_fallback moved during the program: a large "
                 "folio allocation failed somewhere; re-run it")


def fallbacks(orders: int) -> int:
    """The sum of the fallback counters of these orders' sizes (0 where unreadable)."""
    return sum(_counter(f"hugepages-{kb}kB/stats/{name}")
               for kb in mthp_sizes_kb(orders) for name in FALLBACK_STATS)


KHUGEPAGED_RAN = " [khugepaged collapsed]"  # ends such a divergence's title
KHUGEPAGED_WHY = ("khugepaged/pages_collapsed moved during the program: khugepaged "
                  "collapsed a huge page somewhere; re-run it")


def khugepaged_collapsed() -> int:
    """How many huge pages khugepaged has collapsed since boot (0 where unreadable; a
    MADV_COLLAPSE does not count)."""
    return _counter("khugepaged/pages_collapsed")


def _counter(name: str) -> int:
    """A THP counter of sysfs, by its path under THP_SYSFS (0 where unreadable)."""
    try:
        with open(f"{THP_SYSFS}/{name}") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0
