"""Oracle tests: a table of (program, how the kernel's view is bent, the title it must get).

The "kernel" here is synthetic: a Snapshot built from the model's own state
(so an unbent snapshot must compare clean), then bent one way - a page made
absent, a lock flag dropped, VmLck off by a page - to check that each
difference is seen and titled as a kernel developer would want to read it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from fuzzer.check import StepReport
from fuzzer.model import Prediction, State, step
from fuzzer.model.state import RestVma
from fuzzer.oracle import (
    KINDS,
    PRECEDENCE,
    Divergence,
    DivergenceKind,
    by_primary,
    compare,
    primary_first,
)
from fuzzer.prog import ARENA_BASE, parse
from fuzzer.prog.step import Step
from fuzzer.prog.syscalls import PAGE
from fuzzer.snapshot.parse import PM_PRESENT, Snapshot
from tests.synthetic import EXECUTOR_VMA, ZERO_PFN, synthetic_snapshot

Bend = Callable[[Snapshot], Snapshot]


def page_word(index: int, word: int) -> Bend:
    def bend(s: Snapshot) -> Snapshot:
        words = list(s.pagemap)
        words[index] = word
        return replace(s, pagemap=tuple(words))
    return bend


def vma_field(index: int, **changes: object) -> Bend:
    def bend(s: Snapshot) -> Snapshot:
        vmas = list(s.vmas)
        vmas[index] = replace(vmas[index], **changes)  # type: ignore[arg-type]
        return replace(s, vmas=tuple(vmas))
    return bend


def vmlck(delta: int) -> Bend:
    return lambda s: replace(s, vmlck=s.vmlck + delta)


def unchanged(s: Snapshot) -> Snapshot:
    return s


def merge_vmas(first: int) -> Bend:
    def bend(s: Snapshot) -> Snapshot:
        vmas = list(s.vmas)
        a, b = vmas[first], vmas[first + 1]
        vmas[first : first + 2] = [replace(a, end=b.end, rss=a.rss + b.rss, pss=a.pss + b.pss)]
        return replace(s, vmas=tuple(vmas))
    return bend


SHARED_TWICE = """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
touch(@0, write)
mremap(@0, 0, 2p, MREMAP_MAYMOVE|MREMAP_FIXED, @4)
touch(@4, read)
"""
LOCKED_RW = frozenset({"rd", "wr", "mr", "mw", "me", "lo"})

# (id, program text, result the kernel returned at the last step or None for "as predicted",
#  bend of the kernel view, expected titles)
CASES = [
    ("agree", """
mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
""", None, unchanged, []),
    ("populate-without-lock", """
mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
""", None, page_word(2, 0),
     ["presence: mmap(PRIVATE|ANONYMOUS|POPULATE) left pages not anonymous",
      "rss: mmap(PRIVATE|ANONYMOUS|POPULATE, RW) left Rss different from the present pages"]),
    ("zero-page-instead-of-anon", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE|MAP_LOCKED, -1, 0)
""", None, page_word(1, PM_PRESENT | ZERO_PFN),
     ["presence: mmap(PRIVATE|ANONYMOUS|LOCKED) left pages not anonymous",
      "rss: mmap(PRIVATE|ANONYMOUS|LOCKED, RW) left Rss different from the present pages"]),
    ("page-appeared", """
mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
""", None, page_word(0, PM_PRESENT | ZERO_PFN),
     ["presence: mmap(PRIVATE|ANONYMOUS) made pages present"]),
    ("errno", """
mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mlock2(@0, 2p, 0x2)
""", 0, unchanged, ["result: mlock2(INVALID) returned 0 instead of -EINVAL"]),
    ("mmap-address", """
mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
""", -17, unchanged,
     ["result: mmap(PRIVATE|ANONYMOUS, R) returned -EEXIST instead of an arena address"]),
    ("lock-flag-lost", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mlock(@0, 2p)
""", None, vma_field(1, flags=frozenset({"rd", "wr", "mr", "mw", "me"}), locked=0),
     ["lock: mlock left pages unlocked",
      "vmlck: mlock made VmLck differ from the size of locked VMAs"]),
    ("vmlck-off", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mlock(@0, 2p)
""", None, vmlck(PAGE), ["vmlck: mlock made VmLck differ from the size of locked VMAs"]),
    ("smaps-locked-not-pss", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mlock(@0, 2p)
""", None, vma_field(1, locked=PAGE),
     ["locked: mlock left smaps Locked different from Pss of a locked VMA"]),
    ("shared-objects-merged", """
mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mmap(@1, 1p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
""", None, merge_vmas(1),
     ["vma: mmap(SHARED|ANONYMOUS, RW) left one VMA spanning pages the model keeps apart"]),
    ("prot-kept", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mprotect(@0, 2p, PROT_READ)
""", None, vma_field(1, perms="rw-p"),
     ["prot: mprotect(R) left pages rw-p instead of r--p"]),
    ("mlockall-agrees", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mlockall(MCL_CURRENT)
""", None, unchanged, []),
    ("mlockall-missed-own-vmas", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mlockall(MCL_CURRENT)
""", None, vma_field(0, flags=EXECUTOR_VMA.flags, locked=0),
     ["lock: mlockall(CURRENT) left the executor's own VMAs unlocked",
      "vmlck: mlockall(CURRENT) made VmLck differ from the size of locked VMAs"]),
    ("mapping-outside-unexpected", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
""", None, lambda s: replace(s, vmas=(*s.vmas, replace(EXECUTOR_VMA, start=0x10000000,
                                                         end=0x10002000))),
     ["mapping: mmap(PRIVATE|ANONYMOUS) left mappings outside the arena other than "
      "predicted"]),
    # a shmem page mapped at two addresses counts half in each VMA's Pss
    ("pss-shared-agrees", SHARED_TWICE, None, unchanged, []),
    ("pss-shared-counted-in-full", SHARED_TWICE, None, vma_field(1, pss=PAGE),
     ["rss: touch(read) left Pss different from the shares of pages mapped twice"]),
    # AnonHugePages: the 64-page arena holds no 2 MiB region, so no PMD maps a huge page
    # (the huge arena's rows: tests/test_model_pmd.py)
    ("anon-huge-pages-without-a-pmd", """
mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
""", None, vma_field(1, anon_huge=2 << 20),
     ["rss: mmap(PRIVATE|ANONYMOUS|POPULATE, RW) left AnonHugePages different from the huge "
      "pages PMDs map"]),
    ("file-pages-mapped-by-a-pmd", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
touch(@0, write)
""", None, vma_field(1, file_pmd=2 << 20),
     ["rss: touch(write) left file pages mapped by a PMD"]),
    ("unmapped-left-mapped", """
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
munmap(@1, 1p)
""", None, lambda s: replace(s, vmas=(s.vmas[0], replace(s.vmas[1], end=ARENA_BASE + 2 * PAGE))),
     ["mapping: munmap left pages mapped"]),
]


@pytest.mark.parametrize(("text", "ret", "bend", "titles"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_oracle(text: str, ret: int | None, bend: Bend, titles: list[str]) -> None:
    state = State(rest=[RestVma(EXECUTOR_VMA.start, EXECUTOR_VMA.end, lockable=True)])
    program = parse(text)
    for call in program.calls[:-1]:
        step(state, call)
    last = program.calls[-1]
    pred = step(state, last)
    observed_ret = pred.ret if ret is None else ret
    if last.name == "mmap" and ret is None and pred.ret is not None and pred.ret >= 0:
        observed_ret = ARENA_BASE + pred.ret
    snap = bend(synthetic_snapshot(state))
    found = compare(Step(len(program) - 1, last, observed_ret, pred.signal), pred, state, snap)
    assert [d.title for d in found] == titles
    for d in found:
        assert d.expected != d.observed


def test_kinds_are_their_text() -> None:
    """Kinds compare, print and are stored as the strings they always were."""
    assert DivergenceKind.FORK_FLAGS == "fork-flags" and f"{DivergenceKind.LOCK}" == "lock"
    assert DivergenceKind.KERNEL_CRASH not in KINDS  # a guest's finding: never exported
    assert {"hang", "crash", "result"} <= set(KINDS)
    assert json.dumps({"kind": DivergenceKind.VMLCK}) == '{"kind": "vmlck"}'


def test_step_report_reads_its_step() -> None:
    call = parse("munmap(@0, 1p)\n").calls[0]
    step = Step(3, call, -22)
    rep = StepReport(step, Prediction(ret=-22), ())
    assert (rep.index, rep.call, rep.ret, rep.signal) == (3, call, -22, None)


def test_a_step_files_under_its_primary_divergence() -> None:
    """Precedence: the call's own outcome, then state, then accounting (oracle/primary.py)."""
    def d(kind: str, step: int) -> Divergence:
        return Divergence(DivergenceKind(kind), f"{kind}: at {step}", step, "", "")
    found = [d("vmlck", 3), d("vma", 3), d("lock", 3), d("rss", 5), d("presence", 5)]
    assert [(p.title, [o.title for o in rest]) for p, rest in by_primary(found)] == [
        ("lock: at 3", ["vma: at 3", "vmlck: at 3"]),
        ("presence: at 5", ["rss: at 5"]),
    ]
    assert [x.kind for x in primary_first([d("vmlck", 0), d("result", 0), d("hang", 0)])] == [
        "hang", "result", "vmlck"]
    assert set(PRECEDENCE) == set(DivergenceKind)
