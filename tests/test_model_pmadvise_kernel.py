"""The process_madvise table of `test_model_pmadvise.py`, run on the real kernel.

As in `test_model_kernel.py`: a case passes when no step diverges from the
model and the kernel's own results and final arena match the table.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from tests.tables import Case, check_kernel, kernel_params
from tests.test_model_pmadvise import ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_pmadvise_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)
