"""The two ways of stepping a program give the same steps and the same reports.

Without injections the executor stops once a call, at its getppid() marker
(PTRACE_CONT); with them it is stepped with PTRACE_SYSCALL, an entry and an
exit stop a call. On many generated programs, forks and faulting touches
included, both must yield the same Steps (call, result, signal) and check()
the same reports.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuzzer.campaign.throughput import workload
from fuzzer.check import Report, check
from fuzzer.executor import executor_path
from fuzzer.model import Unsupported
from fuzzer.prog import ARENA, Call, Program, parse
from fuzzer.trace import Supervisor

pytestmark = pytest.mark.kernel

PROGRAMS = 300


@pytest.fixture(scope="module")
def modes() -> Iterator[tuple[Supervisor, Supervisor]]:
    with Supervisor(executor_path(), budget=10.0) as marked, \
            Supervisor(executor_path(), budget=10.0) as stepped:
        stepped.markers = False
        yield marked, stepped


def _result(call: Call, ret: int | None) -> object:
    """What of a result two runs share: a child's pid and the address of a mapping the
    kernel placed outside the arena (randomized) differ from run to run."""
    if ret is not None and call.name == "fork" and ret > 0:
        return "child"
    if ret is not None and call.name in ("mmap", "mremap") and ret > 0 \
            and not ARENA.contains(ret):
        return "outside the arena"
    return ret


def _seen(supervisor: Supervisor, program: Program) -> object:
    """The report's steps and divergence titles."""
    try:
        report: Report = check(supervisor, program)
    except Unsupported as e:
        return f"unsupported: {e}"
    steps = [(r.index, r.call, _result(r.call, r.ret), r.signal) for r in report.steps]
    return steps, [d.title for d in report.divergences]


def test_markers_and_syscall_stops_agree_on_generated_programs(
        modes: tuple[Supervisor, Supervisor]) -> None:
    marked, stepped = modes
    programs = workload(PROGRAMS, seed=7)
    forks = faults = 0
    for program in programs:
        got = _seen(marked, program)
        assert got == _seen(stepped, program), program.text()
        if isinstance(got, tuple):
            steps = got[0]
            forks += any(s[1].name == "fork" and s[2] == "child" for s in steps)
            faults += any(s[3] is not None for s in steps)
    assert forks >= 10 and faults >= 10  # the workload exercises both


def test_injections_are_stepped_with_syscall_stops() -> None:
    from fuzzer.inject import load

    with Supervisor(executor_path(), injections=[load("mmap-len0-accepted")]) as sup, \
            sup.run(parse("mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n")) as run:
        assert not run.markers
        assert [s.index for s in run.steps()] == [0]


def test_process_madvise_steps_alike_in_both_modes(
        modes: tuple[Supervisor, Supervisor]) -> None:
    """process_madvise is a getpid, pidfd_open, the call and a close in the executor:
    stepped with PTRACE_SYSCALL, the step is the process_madvise among them, as the
    marker after the close says; both agree with the model on every table row."""
    from tests.test_model_pmadvise import ROWS

    marked, stepped = modes
    for row in ROWS:
        if dict(row.features).get("process_madvise", True) is False:
            continue
        program = parse(row.text)
        got = _seen(marked, program)
        assert got == _seen(stepped, program), program.text()
        assert isinstance(got, tuple)
        if dict(row.features).get("pmadv_self_any", True):
            assert got[1] == [], program.text()


# process_madvise, then a call the executor's own close() of the pidfd could pass for:
# stepped by PTRACE_SYSCALL, the step once ended at the call's exit, and the next step
# took that close() (fd 0, returning 0) for the program's close(0) (expected EBADF).
AFTER_PMADV = [
    "process_madvise(p0, @34, 2p, @34, 2p, 1, MADV_PAGEOUT, 0)\nclose(0)\n",
    "mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
    "process_madvise(p0, @0, 2p, @2, 1p, 2, MADV_COLD, 0)\nclose(0)\nmemfd_create()\n"
    "close(0)\nclose(0)\n",
    "fork()\np1: process_madvise(p0, @0, 1p, @1, 1p, 2, MADV_COLD, 0)\np1: close(0)\nclose(0)\n",
]


@pytest.mark.parametrize("text", AFTER_PMADV)
def test_the_call_after_process_madvise_is_the_programs_own(
        modes: tuple[Supervisor, Supervisor], text: str) -> None:
    marked, stepped = modes
    program = parse(text)
    got = _seen(marked, program)
    assert got == _seen(stepped, program)
    assert isinstance(got, tuple) and got[1] == []  # no divergence in either mode
