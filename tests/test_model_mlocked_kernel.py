"""The PG_mlocked table of `test_model_mlocked.py`, run on the real kernel.

A row passes when no step diverges (the oracle compares every page's PG_mlocked, read
from /proc/kpageflags, with the locked VMAs mapping it), the kernel's results, arena
and VmLck match the table, and the last step's flags are the table's cells: `M`
pages mlocked, `u` pages not. Skipped where the flags cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from fuzzer.observe.pageflags import page_flags
from tests.tables import Case, check_kernel, kernel_params
from tests.test_model_mlocked import CELLS, ROWS

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _flags_readable() -> None:
    if page_flags() is None:
        pytest.skip("/proc/kpageflags or pagemap PFNs cannot be read here")


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_mlocked_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)
    report = run_text(c.text)
    assert report.snapshot is not None
    seen = report.snapshot.mlocked
    want = CELLS[c.name]
    observed = "".join("-" if cell == "-" else "M" if seen >> i & 1 else "u"
                       for i, cell in enumerate(want))
    assert observed == want
