"""The MADV_PAGEOUT table of `test_model_pageout.py`, run on the real kernel.

As in `test_model_kernel.py`: a case passes when no step diverges from the
model and the kernel's own results and final arena match the table. The rows
assume no swap; on a machine with swap they are skipped (feature `no_swap`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from tests.tables import Case, check_kernel, kernel_params
from tests.test_model_pageout import ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_pageout_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)
