"""The throughput benchmark's breakdown (campaign/phases.py): its clock, and a real run."""

from __future__ import annotations

import os

import pytest

from fuzzer.campaign import phases
from fuzzer.campaign.phases import PHASES, _Clock, _targets, _timed, breakdown
from fuzzer.campaign.throughput import workload
from fuzzer.prog import Program


def test_times_are_exclusive() -> None:
    """A timed call inside another counts in its own phase only: the two add up to the
    outer call."""
    clock = _Clock()
    inner = clock.wrap(lambda: sum(range(20_000)), "parsing")

    def body() -> None:
        inner()
        sum(range(20_000))

    clock.wrap(body, "/proc reads")()
    assert clock.ns["parsing"] > 0 and clock.ns["/proc reads"] > 0
    assert [k for k, v in clock.ns.items() if v] == ["/proc reads", "parsing"]


def test_a_call_that_raises_is_timed_and_closed() -> None:
    """An exception inside a timed call: its time is its own phase's, and the nesting is
    right again for the next call."""
    clock = _Clock()

    def fails() -> None:
        sum(range(20_000))
        raise ValueError

    inner = clock.wrap(fails, "model")

    def body() -> None:
        with pytest.raises(ValueError):
            inner()

    clock.wrap(body, "comparison")()
    clock.wrap(lambda: None, "reap")()
    assert clock.ns["model"] > 0 and clock.ns["comparison"] > 0 and clock.ns["reap"] > 0
    assert len(clock._inner) == 1  # nothing is left open (the root slot alone)


def test_the_targets_are_the_breakdowns_phases() -> None:
    assert {phase for _, _, phase in _targets()} == set(PHASES) - {"rest"}


def test_the_wrappers_are_taken_away_after_the_run() -> None:
    """Off the breakdown's run, the campaign's path carries no timing code: every target
    is its original again."""
    before = [vars(owner)[name] for owner, name, _ in _targets()]
    with _timed(_Clock()):
        assert [vars(owner)[name] for owner, name, _ in _targets()] != before
    assert [vars(owner)[name] for owner, name, _ in _targets()] == before


@pytest.mark.kernel
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ptrace, pagemap PFNs)")
def test_every_phase_takes_time_on_a_real_run() -> None:
    """The wrappers are where the breakdown says: each phase of a real run has time in
    it, and every step waited at least once. The targets are their originals after it."""
    from fuzzer.executor import executor_path
    from fuzzer.trace import Supervisor

    before = [vars(owner)[name] for owner, name, _ in phases._targets()]
    programs: list[tuple[Program, int]] = [(p, len(p.calls)) for p in workload(30, 1)]
    with Supervisor(executor_path()) as supervisor:
        got = breakdown(supervisor, programs)
    assert got.steps > 0 and got.stops >= got.steps
    empty = [k for k, v in got.seconds.items() if v <= 0 and k != "page flags"]
    assert not empty, empty
    assert [vars(owner)[name] for owner, name, _ in phases._targets()] == before
