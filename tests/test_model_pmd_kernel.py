"""The PMD table of `test_model_pmd.py`, run on the real kernel (the huge arena only:
`tests/test_huge_arena.py` runs this file with MMFUZZ_ARENA=huge).

For each row hugepages-2048kB/enabled is "madvise", and its old setting comes back
afterwards (`test_model_mthp_kernel.mthp_sizes`). Besides what every kernel twin checks
(no divergence, the results and p0's final pages as the table has them), each row's
region states are held to smaps: a region the model keeps as a PMD-mapped huge page
("H") is 2048 kB of AnonHugePages in the VMA that holds it, and every other VMA of the
arena has none (a split PMD, the huge zero page and PTE-mapped pages count nothing).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fuzzer.check import Report, StepReport, check
from fuzzer.observe.mthp import KHUGEPAGED_RAN, khugepaged_collapsed
from fuzzer.observe.probe import probe
from fuzzer.prog import ARENA, parse
from fuzzer.prog.arena import HUGE_PAGES, PMD_PAGES
from fuzzer.prog.syscalls import PAGE
from fuzzer.trace import Supervisor
from tests.tables import Case, check_kernel, model_params
from tests.test_model_mthp_kernel import mthp_sizes
from tests.test_model_pmd import CASES, FIXED, REGIONS

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(
    ARENA.pages < HUGE_PAGES,
    reason="the huge arena's rows: tests/test_huge_arena.py runs them with MMFUZZ_ARENA=huge")]

PMD = 1 << 9
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ", re.M)


def anon_huge_kb(smaps: str) -> dict[int, int]:
    """AnonHugePages of each arena VMA in smaps text, by its first arena page."""
    out: dict[int, int] = {}
    starts = list(_HEADER.finditer(smaps))
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        start, end = int(m[1], 16), int(m[2], 16)
        if not ARENA.overlaps(start, end):
            continue
        body = smaps[m.end():nxt.start() if nxt else len(smaps)]
        kb = re.search(r"^AnonHugePages: +(\d+) kB", body, re.M)
        out[(start - ARENA.base) // PAGE] = int(kb[1]) if kb else 0
    return out


def _smaps_at_end(supervisor: Supervisor, text: str) -> str:
    """p0's smaps once every call of `text` ran."""
    last = ""
    with supervisor.run(parse(text)) as run:
        for _ in run.steps():  # stopped after each call; after the last one p0 exits
            with open(f"/proc/{run.pid}/smaps") as f:
                last = f.read()
    return last


@pytest.mark.parametrize("c", model_params(CASES))
def test_pmd_on_kernel(c: Case, run_text: Callable[[str], Report],
                       supervisor: Supervisor) -> None:
    if not probe().thp_except_advised:
        pytest.skip("no PR_THP_DISABLE_EXCEPT_ADVISED (6.18+): the executor disables THP")
    orders = int(dict(c.features).get("mthp_orders", 0))
    with mthp_sizes(orders):
        if probe().mthp_orders != orders:
            pytest.skip(f"the row is for mTHP orders {orders:#x}; this machine has "
                        f"{probe().mthp_orders:#x} enabled")
        if c.kernel_bug:  # the kernel diverges (strict: a fixed kernel fails the row)
            with pytest.raises(AssertionError, match="step"):
                check_kernel(c, run_text)
            return
        check_kernel(c, run_text)
        regions = REGIONS[c.name]
        if regions is None:
            return
        huge = anon_huge_kb(_smaps_at_end(supervisor, c.text))
    want = {start: 0 for start in huge}
    for r, kind in enumerate(regions):
        if kind == "H":
            holder = max(s for s in huge if s <= r * PMD_PAGES)
            want[holder] += 2048
    assert huge == want, f"AnonHugePages by VMA (first page): {huge}, the model's {regions}"


def test_anon_huge_pages_are_read() -> None:
    """The smaps reader of the rows above, on text of the form smaps has."""
    base = ARENA.base
    text = (f"{base:x}-{base + PMD_PAGES * PAGE:x} rw-p 00000000 00:00 0\n"
            "Rss:                2048 kB\nAnonHugePages:      2048 kB\nVmFlags: rd wr\n"
            f"{base + PMD_PAGES * PAGE:x}-{base + (PMD_PAGES + 1) * PAGE:x} r--p 0 00:00 0\n"
            "AnonHugePages:         0 kB\n"
            "7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]\nAnonHugePages: 4 kB\n")
    assert anon_huge_kb(text) == {0: 2048, PMD_PAGES: 0}


def test_steps_say_when_a_pmd_was_mapped(run_text: Callable[[str], Report]) -> None:
    """check/program.py tells each step what the model mapped by PMD, which `mmfuzz stats
    ops` counts as (call, "folio", "PMD") and (call, "folio", "huge zero page")."""
    if not probe().thp_except_advised:
        pytest.skip("no PR_THP_DISABLE_EXCEPT_ADVISED (6.18+): the executor disables THP")
    with mthp_sizes(PMD):
        report = run_text("""
            mmap(@0, 1024p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
            madvise(@0, 1024p, MADV_HUGEPAGE)
            touch(@7, read)
            touch(@8, write)
            touch(@9, write)
            madvise(@512, 1p, MADV_POPULATE_WRITE)
            """)
    assert report.divergences == []
    assert [s.folio for s in report.steps] == ["", "", "huge zero page", "PMD", "", "PMD"]
    # ... and the search keeps what first maps one (coverage.mapped)
    assert {"touch(read) maps huge zero page", "touch(write) maps PMD",
            "madvise(POPULATE_WRITE) maps PMD"} <= report.features()


KHUGEPAGED = Path("/sys/kernel/mm/transparent_hugepage/khugepaged")


@contextlib.contextmanager
def _khugepaged_quick() -> Iterator[None]:
    """khugepaged waking every 10 ms instead of every 10 s, for the block (put back).
    Writing the setting wakes it at once."""
    path = KHUGEPAGED / "scan_sleep_millisecs"
    old = path.read_text()
    try:
        path.write_text("10")
        yield
    finally:
        path.write_text(old)


def test_a_khugepaged_collapse_marks_the_divergence(supervisor: Supervisor) -> None:
    """khugepaged is not modelled (docs/SEMANTICS.md §22): a region populated before
    MADV_HUGEPAGE is left PTE-mapped by the model, and khugepaged, let run between two
    steps, collapses it under the program. AnonHugePages shows it, and the divergence is
    marked as one khugepaged may have caused."""
    if not probe().thp_except_advised:
        pytest.skip("no PR_THP_DISABLE_EXCEPT_ADVISED (6.18+): the executor disables THP")
    program = parse(f"""
        mmap(@0, 512p, PROT_READ|PROT_WRITE, {FIXED}|MAP_POPULATE, -1, 0)
        madvise(@0, 512p, MADV_HUGEPAGE)
        touch(@3, read)
        """)

    if not os.access(KHUGEPAGED / "scan_sleep_millisecs", os.W_OK):
        pytest.skip("cannot set khugepaged/scan_sleep_millisecs")

    def wait_for_a_collapse(rep: StepReport, *_: object) -> None:
        """After the madvise step was compared (so that step sees no collapse), let
        khugepaged scan until it has collapsed something."""
        if rep.step.call.name == "madvise":
            before = khugepaged_collapsed()
            deadline = time.monotonic() + 10
            with _khugepaged_quick():
                while khugepaged_collapsed() == before and time.monotonic() < deadline:
                    time.sleep(0.01)

    with mthp_sizes(PMD):
        if not probe().mthp_orders >> 9 & 1:
            pytest.skip("no PMD-sized THP for advised VMAs here")
        report = check(supervisor, program, wait_for_a_collapse)
    titles = [d.title for d in report.divergences]
    assert titles[:1] == ["rss: touch(read) left AnonHugePages different from the huge pages "
                          "PMDs map" + KHUGEPAGED_RAN], titles
    assert "pages_collapsed moved" in report.divergences[0].observed
