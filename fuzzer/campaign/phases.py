"""Where a checked step's time goes: the product's run, phase by phase.

The breakdown is a second run of `check()` over the same programs with the phase
clock on (fuzzer/phase.py: the marks the supervisor, the observer and check() set
where each phase begins and ends). Times are exclusive: a phase marked inside
another (the parse inside a snapshot) is counted in its own phase and not in its
caller's. What no mark covers is check()'s own loop (reports, the step generator,
the hooks): "rest". The marks cost time themselves when the clock is on; the caller
compares the two runs' totals.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from fuzzer import phase
from fuzzer.campaign.memory import settled_heap
from fuzzer.check import check
from fuzzer.model import Unsupported
from fuzzer.prog import Program
from fuzzer.trace import Supervisor

# Phases in the order they are printed, with what each covers.
PHASES = {
    "spawn": "the program down the fork server's pipe, its fork, the child's first stop",
    "ptrace stops": "PTRACE_CONT to the call's marker, so the syscall itself too; PEEKUSER, forks",
    "reap": "kill, waitpid of every process of the run, the server's byte once it reaped them",
    "/proc reads": "open, read and decode smaps and status, pread pagemap",
    "page flags": "PG_mlocked of the pages the model judges, from /proc/kpageflags",
    "parsing": "smaps and status text to a Snapshot",
    "model": "the initial state, one World step per call",
    "comparison": "the oracle, and which other processes to read whole",
    "rest": "check()'s own loop: the step generator, reports, hooks",
}


@dataclass(frozen=True)
class Breakdown:
    seconds: dict[str, float]  # phase -> exclusive seconds, every phase of PHASES
    total: float  # the instrumented run, seconds
    steps: int
    stops: int  # waitpid calls on the run's processes (ptrace stops and ends)


def breakdown(supervisor: Supervisor, ran: list[tuple[Program, int]]) -> Breakdown:
    """check() over the programs of `ran`, timed phase by phase."""
    clock = phase.CLOCK
    clock.reset()
    steps = 0
    with settled_heap():  # as the run it is compared with (throughput.py)
        clock.on = True
        try:
            start = time.perf_counter_ns()
            for program, _ in ran:
                with contextlib.suppress(Unsupported):
                    steps += len(check(supervisor, program).steps)
            total = time.perf_counter_ns() - start
        finally:
            clock.on = False
    ns = dict(zip(phase.NAMES, clock.ns, strict=True))
    ns["rest"] = total - sum(ns.values())
    return Breakdown({k: ns[k] / 1e9 for k in PHASES}, total / 1e9, steps, clock.waits)
