"""The supervisor's time budgets on SIGALRM, delivered where it waits for a process.

A Python signal handler runs between two bytecodes of whatever code runs at that
moment. An exception it raises while a garbage-collector callback or a finaliser
runs is dropped ("Exception ignored in ..."), so a budget that ran out there was
missed, and a program that should have been a hang ran on. Raised in the middle of
reading /proc, it could leave descriptors half made. So the handler raises only
inside `waitpid`, around a blocking wait: the exception reaches the waiter. An
alarm that rings anywhere else is kept, and raised as the next wait begins (a step's
/proc reads are short; its waits are where a program's time goes). The timer rings
again every REPEAT seconds after it first ran out, until it is disarmed, so an alarm
taken by some other code in the few bytecodes around a wait is rung again.

The handler is installed by the first `arm` and stays: nothing else in the
process takes SIGALRM (installing it at every arm cost about 5 µs, twice a program).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType

from fuzzer.trace import ptrace_calls

REPEAT = 0.05  # seconds between rings once the budget ran out


class Expired(Exception):
    """The armed budget ran out (raised in a wait)."""


_fired = False  # the budget ran out; not yet raised in a wait
_waiting = 0  # inside waitpid(): the handler may raise
_installed = False  # _ring is SIGALRM's handler


def _ring(signo: int, frame: FrameType | None) -> None:
    global _fired
    _fired = True
    if _waiting:
        raise Expired


def arm(seconds: float) -> None:
    """Start a budget of `seconds` (replacing the one running)."""
    global _fired, _installed
    if not _installed:
        signal.signal(signal.SIGALRM, _ring)
        _installed = True
    signal.setitimer(signal.ITIMER_REAL, 0)  # the timer it replaces rings no more
    _fired = False
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT)


def disarm() -> None:
    """Stop the budget; an alarm not yet raised is forgotten."""
    global _fired
    signal.setitimer(signal.ITIMER_REAL, 0)
    _fired = False


def waiting(call: Callable[[int, int], tuple[int, int]], a: int, b: int) -> tuple[int, int]:
    """call(a, b), a blocking wait, raising Expired if the budget ran out before it or runs
    out during it (a plain function, not a context manager: the supervisor waits about
    once a step, and a generator-based one cost a microsecond each time)."""
    global _waiting
    check()
    _waiting += 1
    try:
        check()
        return call(a, b)
    finally:
        _waiting -= 1


def waitpid(pid: int, options: int) -> tuple[int, int]:
    """os.waitpid in a `waiting`."""
    return waiting(os.waitpid, pid, options)


def cont_wait(pid: int, signo: int) -> tuple[int, int]:
    """ptrace_calls.cont_wait (resume a tracee, wait for its stop, read its marker) in a
    `waiting`."""
    return waiting(ptrace_calls.cont_wait, pid, signo)


def check() -> None:
    """Raise Expired if the budget ran out (before resuming a process: it would run on)."""
    global _fired
    if _fired:
        _fired = False
        raise Expired


__all__ = ["REPEAT", "Expired", "arm", "check", "cont_wait", "disarm", "waitpid"]
