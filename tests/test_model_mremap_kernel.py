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



def test_fault_around_outside_the_arena_on_kernel() -> None:
    """The program of test_fault_around_outside_the_arena_follows_the_address, run where
    the kernel places its move: each run by a fresh fork server, whose children get an
    address layout of their own (the children of one server share it). In 2 of 16
    places offset 0 is not in the fault's window, so 40 runs meet one with a chance of
    about 99.5 %. Each must agree with the model."""
    from fuzzer.check import check
    from fuzzer.executor import executor_path
    from fuzzer.prog import parse
    from fuzzer.trace import Supervisor
    from tests.test_model_mremap import GROWN_OUTSIDE

    program = parse(GROWN_OUTSIDE)
    for _ in range(40):
        with Supervisor(executor_path(), budget=10.0) as supervisor:
            report = check(supervisor, program)
        assert report.divergences == [], report.divergences
