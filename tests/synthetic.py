"""A synthetic kernel for the oracle's tests: the Snapshot a kernel that agrees with
the model would show, to be bent one way and compared (test_oracle.py,
test_titles_golden.py)."""

from __future__ import annotations

from dataclasses import replace

from fuzzer.model import State
from fuzzer.model.pmd import HUGE
from fuzzer.model.state import RESIDENT
from fuzzer.observe import Snapshot, Vma
from fuzzer.prog import ARENA_BASE
from fuzzer.prog.arena import PMD_PAGES
from fuzzer.prog.syscalls import PAGE
from fuzzer.snapshot.parse import PM_EXCLUSIVE, PM_FILE, PM_PRESENT

ZERO_PFN = 0x1234
EXECUTOR_VMA = Vma(0x400000, 0x401000, "r-xp", 7, "/mmfuzz-executor", PAGE, PAGE, 0,
                   frozenset({"rd", "ex", "mr", "mw", "me"}))


def synthetic_snapshot(state: State) -> Snapshot:
    """What a kernel that agrees with the model would show (one VMA per run of equal pages)."""
    own = state.rest[0]
    vmas = [replace(EXECUTOR_VMA, flags=EXECUTOR_VMA.flags | ({"lo"} if own.lo else set()),
                    locked=EXECUTOR_VMA.pss if own.lo else 0)]
    words = []
    for page in state.pages:
        letter = page.state if page is not None else "."
        words.append({
            ".": 0,
            "Z": PM_PRESENT | ZERO_PFN,
            "A": PM_PRESENT | PM_EXCLUSIVE | 0x5000,
            "F": PM_PRESENT | PM_FILE | PM_EXCLUSIVE | 0x6000,
            "f": PM_PRESENT | PM_FILE | 0x6000,  # mapped twice: half of it in each Pss
        }[letter[0]])
    i = 0
    while i < len(state.pages):
        page = state.pages[i]
        if page is None:
            i += 1
            continue
        j = i
        while j + 1 < len(state.pages) and (nxt := state.pages[j + 1]) is not None and \
                replace(nxt.attrs, pgoff=0) == replace(page.attrs, pgoff=0):
            j += 1
        a = page.attrs
        rss = sum(PAGE for p in state.pages[i : j + 1] if p is not None and p.state in RESIDENT)
        pss = sum(PAGE // (2 if p.state == "f" else 1) for p in state.pages[i : j + 1]
                  if p is not None and p.state in RESIDENT)
        perms = "".join(c if a.prot & b else "-" for c, b in (("r", 1), ("w", 2), ("x", 4)))
        perms += "s" if a.shared else "p"
        flags = {"mr", "mw", "me"} | {f for f, on in (("lo", a.lo), ("lf", a.lf), ("dc", a.dc),
                                                      ("wf", a.wf), ("sl", a.sl)) if on}
        # AnonHugePages: 2 MiB a region a PMD maps a huge page in (the huge arena's)
        huge = sum(PMD_PAGES * PAGE for r, kind in enumerate(state.pmds)
                   if kind == HUGE and i <= r * PMD_PAGES <= j)
        vmas.append(Vma(ARENA_BASE + i * PAGE, ARENA_BASE + (j + 1) * PAGE, perms,
                        a.obj, "/dev/zero (deleted)" if a.shared else "", rss, pss,
                        pss if a.lo else 0, frozenset(flags), huge))
        i = j + 1
    vmlck = state.locked_pages() * PAGE
    return Snapshot(tuple(vmas), vmlck, tuple(words), ZERO_PFN)
