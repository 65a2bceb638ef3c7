"""The Pss table of `test_model_pss.py`, run on the real kernel.

As in `test_model_kernel.py`: a case passes when no step diverges from the
model (the oracle compares every arena VMA's Pss with the model's mapcounts)
and the kernel's own results, final arena and VmLck match the table. Then the
figure itself: smaps' Pss of the row's VMA, in the last caller, is the table's.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from fuzzer.oracle.views import arena_vmas
from fuzzer.prog import ARENA_BASE
from fuzzer.prog.syscalls import PAGE
from tests.tables import Case, check_kernel, kernel_params
from tests.test_model_pss import PSS, ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_pss_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)


@pytest.mark.parametrize("name", sorted(PSS))
def test_pss_in_smaps(name: str, run_text: Callable[[str], Report]) -> None:
    (c,) = [c for c in ROWS if c.name == name]
    first, counts, kb = PSS[name]
    report = run_text(c.text)
    assert report.snapshot is not None
    (vma,) = [v for v in arena_vmas(report.snapshot) if v.start == ARENA_BASE + first * PAGE]
    assert (vma.size // PAGE, vma.pss // 1024) == (len(counts), kb)
