"""Where a checked step's time goes: the product's run, phase by phase.

The breakdown is a second run of `check()` over the same programs, with a timer
wrapped around the functions that make up each phase for the length of that run
and unwrapped after it, so the campaign's path carries no timing code at all.
Times are exclusive: a wrapped function nested in another (the parse inside a
snapshot) is counted in its own phase and not in its caller's. What no wrapper
covers is check()'s own loop (reports, the step generator, the hooks): "rest".
The wrappers cost time themselves; the caller compares the two runs' totals.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from fuzzer.campaign.memory import settled_heap
from fuzzer.model import Unsupported
from fuzzer.model.world import World
from fuzzer.observe import Observer
from fuzzer.prog import Program
from fuzzer.trace import Supervisor, alarm
from fuzzer.trace.supervisor import Run

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


class _Clock:
    """Exclusive time per phase: each timed call subtracts the timed calls inside it."""

    def __init__(self) -> None:
        self.ns = dict.fromkeys(PHASES, 0)
        self._inner = [0]  # per open timed call, the time of the timed calls inside it
        self.calls = 0  # calls of the counted functions

    def count(self, fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return fn(*args, **kwargs)

        return counted

    def wrap(self, fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
        ns, inner, clock = self.ns, self._inner, time.perf_counter_ns

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            inner.append(0)
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = clock() - start
                ns[phase] += spent - inner.pop()
                inner[-1] += spent

        return timed


def _targets() -> list[tuple[object, str, str]]:
    check_module = import_module("fuzzer.check.program")
    proc_module = import_module("fuzzer.observe.proc")
    return [
        (Run, "__enter__", "spawn"),
        (Run, "_advance", "ptrace stops"),
        (Run, "_finish", "ptrace stops"),
        (Run, "_reap", "reap"),
        (Observer, "__enter__", "/proc reads"),
        (Observer, "close", "/proc reads"),
        (Observer, "snapshot", "/proc reads"),
        (Observer, "pagemap", "/proc reads"),
        (Observer, "with_flags", "page flags"),
        (Observer, "_parse", "parsing"),
        (proc_module, "parse_vmlck", "parsing"),
        (check_module, "initial_state", "model"),
        (World, "start", "model"),
        (check_module, "world_step", "model"),
        (check_module, "compare", "comparison"),
        (check_module, "_compare_all", "comparison"),
    ]


@contextlib.contextmanager
def _timed(clock: _Clock) -> Iterator[None]:
    """Wrap every target for the length of the block; put the originals back after."""
    saved: list[tuple[object, str, object]] = []
    try:
        # Run._wait and alarm.cont_wait (a marker's resume and wait): counted, not timed
        waits = [(Run, "_wait", ""), (alarm, "cont_wait", "")]
        for owner, name, phase in [*_targets(), *waits]:
            original = vars(owner)[name]  # the descriptor itself (World.start: a classmethod)
            saved.append((owner, name, original))
            wrap = clock.wrap if phase else clock.count
            setattr(owner, name, wrap(getattr(owner, name), phase))
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def breakdown(supervisor: Supervisor, ran: list[tuple[Program, int]]) -> Breakdown:
    """check() over the programs of `ran`, timed phase by phase."""
    from fuzzer.check import check  # the module whose globals are wrapped

    clock = _Clock()
    steps = 0
    with settled_heap(), _timed(clock):  # as the run it is compared with (throughput.py)
        start = time.perf_counter_ns()
        for program, _ in ran:
            with contextlib.suppress(Unsupported):
                steps += len(check(supervisor, program).steps)
        total = time.perf_counter_ns() - start
    clock.ns["rest"] = total - sum(clock.ns.values())
    return Breakdown({k: v / 1e9 for k, v in clock.ns.items()}, total / 1e9, steps,
                     clock.calls)
