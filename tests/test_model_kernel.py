"""The model table of `test_model.py`, run on the real kernel.

Each program runs in the supervised executor beside the model; the case
passes when no step diverges and the kernel's own results and final arena
also match the table, so the table is checked against the kernel directly,
not only through the model.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.oracle.views import kernel_view, render
from fuzzer.prog import ARENA_BASE, ARENA_SIZE, Call
from fuzzer.prog.syscalls import PAGE, errno_name
from fuzzer.trace import Report
from tests.test_model import CASES, Case, offset_text, signal_text

pytestmark = pytest.mark.kernel


def kernel_result(call: Call, ret: int | None, signal: tuple[int, int] | None) -> str:
    if call.name == "touch":
        return signal_text(signal)
    assert ret is not None
    if -4095 <= ret < 0:
        return f"-{errno_name(-ret)}"
    if call.name != "mmap":
        return str(ret)
    if ARENA_BASE <= ret < ARENA_BASE + ARENA_SIZE:
        return offset_text(ret - ARENA_BASE)
    return "outside"


def explain(report: Report) -> str:
    lines = [f"program:\n{report.program.text()}"]
    for d in report.divergences:
        call = report.program.calls[d.step].name if d.step < len(report.program) else "?"
        lines.append(f"step {d.step} ({call}): {d.title}\n"
                     f"    expected: {d.expected}\n    observed: {d.observed}")
    return "\n".join(lines)


@pytest.mark.parametrize("c", CASES)
def test_model_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    report = run_text(c.text)
    assert report.divergences == [], explain(report)
    results = [kernel_result(s.call, s.ret, s.signal) for s in report.steps]
    assert report.snapshot is not None
    final = render(kernel_view(report.snapshot))
    locked = report.snapshot.vmlck // PAGE if c.locked is not None else None
    assert (results, final, locked) == (list(c.results), c.final, c.locked), \
        f"kernel and model agree, but not with the table\n{report.program.text()}"
