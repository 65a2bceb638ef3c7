"""The madvise table of `test_model_madvise.py`, run on the real kernel.

As in `test_model_kernel.py`: a case passes when no step diverges from the
model and the kernel's own results and final arena match the table. Below the
table, the kernel behaviour behind the model's Unsupported cases, recorded
without the model.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from fuzzer.observe import Observer
from fuzzer.oracle.views import kernel_view, render
from fuzzer.prog import parse
from fuzzer.trace import Supervisor
from tests.tables import Case, check_kernel, kernel_params
from tests.test_model_madvise import ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_madvise_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)


def kernel_only(supervisor: Supervisor, text: str) -> list[str]:
    """The arena after every step, as the kernel shows it (no model involved)."""
    views = []
    with supervisor.run(parse(text)) as run, Observer(run.pid) as observer:
        for _ in run.steps():
            views.append(render(kernel_view(observer.snapshot())))
    return views


# Why flag-only advice on part of an anonymous-shared mapping matters: the flag
# change splits the shmem VMA (madvise_update_vma), and do_fault_around clamps
# its window to the faulting VMA, so cached pages across the split are not
# mapped. With the whole object advised there is no split. The model keeps
# these flags in Attrs, and vmas.track follows the splits.
SPLIT = """
    mmap(@0, 8p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
    madvise(@0, 8p, MADV_DONTNEED)
    madvise(@4, 4p, {advice})
    touch(@4, read)
"""


@pytest.mark.parametrize(("advice", "arena"), [
    ("MADV_RANDOM", "@0-7 rw-s ....FFFF"),
    ("MADV_HUGEPAGE", "@0-7 rw-s ....FFFF"),
    ("MADV_DONTDUMP", "@0-7 rw-s ....FFFF"),
    ("MADV_DONTFORK", "@0-3 rw-s ....; @4-7 rw-s dc FFFF"),
    # ksm_madvise leaves shared VMAs alone: no split, the whole window is mapped
    ("MADV_MERGEABLE", "@0-7 rw-s FFFFFFFF"),
])
def test_split_stops_fault_around(supervisor: Supervisor, advice: str, arena: str) -> None:
    assert kernel_only(supervisor, SPLIT.format(advice=advice))[-1] == arena
