"""The mremap table of `test_model_mremap.py`, run on the real kernel.

Each program runs in the supervised executor beside the model; a case passes
when no step diverges and the kernel's own results, final arena and VmLck
also match the table. A case the kernel gets wrong (`kernel_bug`) is a strict
xfail "kernel: ..."; one the model gets wrong stays a strict xfail "model: ...".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from tests.tables import Case, check_kernel, kernel_params
from tests.test_model_mremap import ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_mremap_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)
