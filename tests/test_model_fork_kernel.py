"""The fork table of `test_model_fork.py`, run on the real kernel.

Every live process is compared with the model after every step (the checker
does that for programs that fork), so a case passes when no step diverges in
any process, and the kernel's results and the last caller's arena match the
table too.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from tests.tables import Case, check_kernel, kernel_params
from tests.test_model_fork import ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_fork_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)
