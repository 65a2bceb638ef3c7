"""The model table of `test_model.py`, run on the real kernel.

Each program runs in the supervised executor beside the model; the case
passes when no step diverges and the kernel's own results and final arena
also match the table, so the table is checked against the kernel directly,
not only through the model.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from tests.tables import Case, check_kernel, kernel_params
from tests.test_model import ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_model_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)
