"""The supervisor's time budgets on SIGALRM, delivered where it waits for a process.

A Python signal handler runs between two bytecodes of whatever code runs at that
moment. An exception it raises while a garbage-collector callback or a finaliser
runs is dropped ("Exception ignored in ..."), so a budget that ran out there was
missed, and a program that should have been a hang ran on. Raised in the middle of
reading /proc, it could leave descriptors half made. So the handler raises only
inside `waiting()`, around a blocking waitpid: the exception reaches the waiter. An
alarm that rings anywhere else is kept, and raised as the next wait begins (a step's
/proc reads are short; its waits are where a program's time goes). The timer rings
again every REPEAT seconds after it first ran out, until it is disarmed, so an alarm
taken by some other code in the few bytecodes around a wait is rung again.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

REPEAT = 0.05  # seconds between rings once the budget ran out


class Expired(Exception):
    """The armed budget ran out (raised in a wait)."""


_fired = False  # the budget ran out; not yet raised in a wait
_waiting = 0  # inside waiting(): the handler may raise


def _ring(signo: int, frame: FrameType | None) -> None:
    global _fired
    _fired = True
    if _waiting:
        raise Expired


def arm(seconds: float) -> None:
    """Start a budget of `seconds` (replacing the one running)."""
    global _fired
    signal.signal(signal.SIGALRM, _ring)
    signal.setitimer(signal.ITIMER_REAL, 0)  # the timer it replaces rings no more
    _fired = False
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT)


def disarm() -> None:
    """Stop the budget; an alarm not yet raised is forgotten."""
    global _fired
    signal.setitimer(signal.ITIMER_REAL, 0)
    _fired = False


@contextmanager
def waiting() -> Iterator[None]:
    """Around one blocking wait: raises Expired if the budget ran out before it or
    runs out during it."""
    global _waiting
    check()
    _waiting += 1
    try:
        check()  # it may have rung between the first check and the count
        yield
    finally:
        _waiting -= 1


def check() -> None:
    """Raise Expired if the budget ran out (before resuming a process: it would run on)."""
    global _fired
    if _fired:
        _fired = False
        raise Expired


__all__ = ["REPEAT", "Expired", "arm", "check", "disarm", "waiting"]
