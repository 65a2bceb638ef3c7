"""The mremap table of `test_model_mremap.py`, run on the real kernel.

Each program runs in the supervised executor beside the model; a case passes
when no step diverges and the kernel's own results, final arena and VmLck
also match the table. A case the kernel gets wrong (`kernel_bug`) is a strict
xfail "kernel: ..."; one the model gets wrong stays a strict xfail "model: ...".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.oracle.views import kernel_view, render
from fuzzer.prog import ARENA_BASE, ARENA_SIZE, Call
from fuzzer.prog.syscalls import PAGE, errno_name
from fuzzer.trace import Report
from tests.test_model_kernel import explain
from tests.test_model_mremap import ADDRESS_CALLS, ROWS, Case, address_text, signal_text

pytestmark = pytest.mark.kernel


def kernel_result(call: Call, ret: int | None, signal: tuple[int, int] | None) -> str:
    if call.name == "touch":
        return signal_text(signal)
    assert ret is not None
    if -4095 <= ret < 0:
        return f"-{errno_name(-ret)}"
    if call.name not in ADDRESS_CALLS:
        return str(ret)
    if ARENA_BASE <= ret < ARENA_BASE + ARENA_SIZE:
        return address_text(ret - ARENA_BASE)
    return "outside"


def marks(c: Case) -> list[pytest.MarkDecorator]:
    if c.kernel_bug:
        return [pytest.mark.xfail(reason=f"kernel: {c.kernel_bug}", strict=True)]
    if c.model_bug:
        return [pytest.mark.xfail(reason=f"model: {c.model_bug}", strict=True)]
    return []


KERNEL_CASES = [pytest.param(c, id=c.name, marks=marks(c)) for c in ROWS]


@pytest.mark.parametrize("c", KERNEL_CASES)
def test_mremap_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    report = run_text(c.text)
    assert report.divergences == [], explain(report)
    results = [kernel_result(s.call, s.ret, s.signal) for s in report.steps]
    assert report.snapshot is not None
    final = render(kernel_view(report.snapshot))
    locked = report.snapshot.vmlck // PAGE if c.locked is not None else None
    assert (results, final, locked) == (list(c.results), c.final, c.locked), \
        f"kernel and model agree, but not with the table\n{report.program.text()}"
