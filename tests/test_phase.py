"""The phase clock (fuzzer/phase.py) and the breakdown built on it (campaign/phases.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fuzzer import phase
from fuzzer.campaign.phases import PHASES, breakdown
from fuzzer.campaign.throughput import workload
from fuzzer.prog import Program


@pytest.fixture
def clock() -> Iterator[phase.Clock]:
    phase.CLOCK.reset()
    phase.CLOCK.on = True
    try:
        yield phase.CLOCK
    finally:
        phase.CLOCK.on = False
        phase.CLOCK.reset()


def test_off_the_marks_count_nothing() -> None:
    phase.CLOCK.reset()
    token = phase.begin()
    phase.end(phase.MODEL, token)
    phase.count_wait()
    assert token == 0 and phase.CLOCK.ns == [0] * len(phase.NAMES) and phase.CLOCK.waits == 0


def test_times_are_exclusive(clock: phase.Clock) -> None:
    """A phase inside another counts in its own phase only: the two add up to the outer."""
    outer = phase.begin()
    inner = phase.begin()
    sum(range(20_000))
    phase.end(phase.PARSING, inner)
    sum(range(20_000))
    phase.end(phase.PROC, outer)
    ns = dict(zip(phase.NAMES, clock.ns, strict=True))
    assert ns["parsing"] > 0 and ns["/proc reads"] > 0
    assert [k for k, v in ns.items() if v] == ["/proc reads", "parsing"]


def test_a_phase_left_open_is_closed_with_the_one_around_it(clock: phase.Clock) -> None:
    """An exception that skipped an end: its time is the outer phase's, and the clock's
    nesting is right again for the next phase."""
    outer = phase.begin()
    phase.begin()  # never ended
    sum(range(20_000))
    phase.end(phase.COMPARISON, outer)
    after = phase.begin()
    phase.end(phase.MODEL, after)
    ns = dict(zip(phase.NAMES, clock.ns, strict=True))
    assert ns["comparison"] > 0 and ns["model"] > 0
    assert sum(ns.values()) == ns["comparison"] + ns["model"]
    assert phase.begin() == 1  # nothing is left open


def test_the_names_are_the_breakdowns_phases() -> None:
    assert (*phase.NAMES, "rest") == tuple(PHASES)


@pytest.mark.kernel
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ptrace, pagemap PFNs)")
def test_every_marked_phase_takes_time_on_a_real_run() -> None:
    """The marks are where the breakdown says: each phase of a real run has time in it,
    and every step waited at least once. The clock is off again after it."""
    from fuzzer.executor import executor_path
    from fuzzer.trace import Supervisor

    programs: list[tuple[Program, int]] = [(p, len(p.calls)) for p in workload(30, 1)]
    with Supervisor(executor_path()) as supervisor:
        got = breakdown(supervisor, programs)
    assert got.steps > 0 and got.stops >= got.steps
    empty = [k for k, v in got.seconds.items() if v <= 0 and k != "page flags"]
    assert not empty, empty
    assert not phase.CLOCK.on
