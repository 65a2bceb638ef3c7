"""fuzzer/stepcalls.c is built, used, and does what its Python twins do.

`make setup` builds it, so a checkout that ran it steps every program with it: a build
that silently failed would cost every campaign its speed, and fails here instead. The
reads' twins are compared in tests/test_proc_read.py; here the step itself: resuming a
process and waiting for its marker, on generated programs (forks, faulting touches and
hangs included), and the errors of a process that is not a tracee.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from ptrace import PtraceError

from fuzzer import stepcalls
from fuzzer.campaign.throughput import workload
from fuzzer.check import Report, check
from fuzzer.executor import executor_path
from fuzzer.model import Unsupported
from fuzzer.observe import proc
from fuzzer.observe.proc import PyReads
from fuzzer.prog import ARENA, Program
from fuzzer.trace import Supervisor, ptrace_calls
from tests.test_markers import _result

pytestmark = pytest.mark.kernel

PROGRAMS = 300


def test_the_c_module_is_built_and_used() -> None:
    assert stepcalls.why_not() == "", stepcalls.why_not()
    assert stepcalls.describe() == "C (fuzzer/stepcalls.c)"
    assert ptrace_calls.cont_wait is not ptrace_calls.py_cont_wait
    assert not isinstance(proc.READS, PyReads)


def test_an_environment_variable_picks_the_python_twins() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from fuzzer import stepcalls; from fuzzer.trace import "
         "ptrace_calls; from fuzzer.observe import proc; print(stepcalls.describe(), "
         "ptrace_calls.cont_wait is ptrace_calls.py_cont_wait, type(proc.READS).__name__)"],
        env={**os.environ, stepcalls.ENV: "python"}, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Python", f"({stepcalls.ENV}=python)", "True", "PyReads"]


def _seen(supervisor: Supervisor, program: Program) -> object:
    """The report's steps and divergence titles, and what its last snapshot shows of the
    arena (the executor's own VMAs move with ASLR from run to run, a file's inode is new)."""
    try:
        report: Report = check(supervisor, program)
    except Unsupported as e:
        return f"unsupported: {e}"
    steps = [(r.index, r.call, _result(r.call, r.ret), r.signal) for r in report.steps]
    snap = report.snapshot
    shown = None if snap is None else \
        (snap.vmlck, [(v.start, v.end, v.perms, v.rss, v.pss, v.locked, v.flags)
                      for v in snap.vmas if ARENA.contains(v.start)])
    return steps, [d.title for d in report.divergences], shown


def test_the_twins_check_generated_programs_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    programs = workload(PROGRAMS, seed=11)
    with Supervisor(executor_path(), budget=10.0) as supervisor:
        in_c = [_seen(supervisor, p) for p in programs]
        with monkeypatch.context() as m:
            m.setattr(ptrace_calls, "cont_wait", ptrace_calls.py_cont_wait)
            m.setattr(proc, "READS", PyReads())
            in_python = [_seen(supervisor, p) for p in programs]
    forks = faults = 0
    for program, a, b in zip(programs, in_c, in_python, strict=True):
        assert a == b, program.text()
        if isinstance(a, tuple):
            forks += any(s[1].name == "fork" and s[2] == "child" for s in a[0])
            faults += any(s[3] is not None for s in a[0])
    assert forks >= 10 and faults >= 10  # the workload exercises both


@pytest.mark.parametrize("twin", ["C", "Python"])
def test_a_process_that_is_no_tracee_is_a_ptrace_error(twin: str) -> None:
    cont_wait = ptrace_calls.cont_wait if twin == "C" else ptrace_calls.py_cont_wait
    child = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(PtraceError) as e:
            cont_wait(child.pid, 0)
        assert e.value.errno == 3  # ESRCH: not traced by us
        assert "PTRACE_CONT" in str(e.value)
    finally:
        child.kill()
        child.wait()
