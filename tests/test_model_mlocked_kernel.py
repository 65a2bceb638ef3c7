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
from fuzzer.model.features import mthp_sizes_kb
from fuzzer.observe.pageflags import page_flags
from fuzzer.observe.probe import probe
from tests.tables import Case, check_kernel, kernel_params, model_params
from tests.test_model_mlocked import CELLS, ROWS, ROWS_MTHP
from tests.test_model_mthp_kernel import mthp_sizes

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _flags_readable() -> None:
    if page_flags() is None:
        pytest.skip("/proc/kpageflags or pagemap PFNs cannot be read here")


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_mlocked_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    _check(c, run_text)


@pytest.mark.parametrize("c", model_params(ROWS_MTHP))
def test_mlocked_of_large_folios_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    """The mTHP rows, with their sizes set to "madvise" and put back (as the mTHP table's
    twin does)."""
    orders = int(dict(c.features)["mthp_orders"])
    if not probe().thp_except_advised:
        pytest.skip("no PR_THP_DISABLE_EXCEPT_ADVISED (6.18+): the executor disables THP")
    with mthp_sizes(orders):
        if probe().mthp_orders != orders:
            pytest.skip(f"the row is for mTHP sizes {mthp_sizes_kb(orders)} kB only")
        _check(c, run_text)


def _check(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)
    report = run_text(c.text)
    assert report.snapshot is not None
    seen = report.snapshot.mlocked
    want = CELLS[c.name]
    assert seen >= 0 or not want.strip("-"), "the flags of judged pages were not read"
    observed = "".join("-" if cell == "-" else "M" if seen >> i & 1 else "u"
                       for i, cell in enumerate(want))
    assert observed == want
