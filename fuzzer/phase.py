"""Where a checked step's time goes: the marks the per-step code sets, and their clock.

The supervisor, the observer and check() mark where each phase of a step begins
(`begin`) and ends (`end`); `count_wait` counts the waits on the run's processes.
The clock is off except while the throughput benchmark's breakdown runs
(fuzzer/campaign/phases.py): off, each mark is one test of a flag, and the
campaign's numbers are untouched. On, `end` adds the time since its `begin` to
its phase, less the time of the phases begun and ended inside it: times are
exclusive (the parse inside a snapshot counts as parsing, not as a /proc read).

Marks rather than wrappers put around the functions from outside: these modules
are compiled (fuzzer/native.py), and a compiled call does not look its callee up
where a wrapper could be put.
"""

from __future__ import annotations

import time
from typing import Final

# The phases, in the order the breakdown prints them (phases.py describes each).
SPAWN: Final = 0
PTRACE: Final = 1
REAP: Final = 2
PROC: Final = 3
FLAGS: Final = 4
PARSING: Final = 5
MODEL: Final = 6
COMPARISON: Final = 7
NAMES: Final = ("spawn", "ptrace stops", "reap", "/proc reads", "page flags", "parsing",
                "model", "comparison")


class Clock:
    """Nanoseconds per phase, while on."""

    def __init__(self) -> None:
        self.on = False
        self.ns = [0] * len(NAMES)  # exclusive nanoseconds per phase
        self.waits = 0  # waitpid calls on the run's processes
        self._starts: list[int] = []  # per open phase, when it began
        self._inner: list[int] = []  # per open phase, the time of the phases inside it

    def reset(self) -> None:
        self.ns = [0] * len(NAMES)
        self.waits = 0
        self._starts.clear()
        self._inner.clear()


CLOCK: Final = Clock()


def begin() -> int:
    """Mark a phase's start: a token for `end` (0 while the clock is off)."""
    clock = CLOCK
    if not clock.on:
        return 0
    clock._inner.append(0)
    clock._starts.append(time.perf_counter_ns())
    return len(clock._starts)


def end(phase: int, token: int) -> None:
    """Mark the end of the phase `begin` gave `token` for. A phase begun inside it and
    never ended (an exception left it) is closed with it, its time counted in this one."""
    if not token:
        return
    now = time.perf_counter_ns()
    clock = CLOCK
    del clock._starts[token:]
    del clock._inner[token:]
    spent = now - clock._starts.pop()
    clock.ns[phase] += spent - clock._inner.pop()
    if clock._inner:
        clock._inner[-1] += spent


def count_wait() -> None:
    if CLOCK.on:
        CLOCK.waits += 1
