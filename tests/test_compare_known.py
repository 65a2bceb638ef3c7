"""The comparison's shortcut against the full comparison, on thousands of generated programs.

A step whose snapshot is the very one the caller last agreed with, and whose state has
the same `state_key`, has only its result compared (`compare(..., known=True)`,
check/program.py; PG_mlocked is not read either). Here every such step is compared in
full beside it, on the real kernel: without an injection (the flags read too, settled as
in a campaign), and under injections that make the kernel leave /proc as it was while
the model's state changes (a call that does nothing, a flag not set), which is where a
key that missed part of the state would hide a divergence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

import fuzzer.check.program as check_program
from fuzzer.campaign.throughput import workload
from fuzzer.check import check
from fuzzer.executor import executor_path
from fuzzer.inject.api import EntryAction, Injection, Skip, Syscall
from fuzzer.inject.load import load
from fuzzer.model import Prediction, State, Unsupported, mlocked
from fuzzer.observe.pageflags import page_flags
from fuzzer.oracle import Divergence
from fuzzer.oracle.compare import compare
from fuzzer.prog.step import Step
from fuzzer.prog.text import parse
from fuzzer.snapshot.parse import Snapshot
from fuzzer.trace.supervisor import Supervisor

# (injection or "", programs, seed)
RUNS = [
    ("", 1500, 11),
    ("populate-needs-lock", 250, 12),
    ("munlock-skipped", 250, 13),
    ("mlock2-onfault-ignored", 250, 14),
    ("mremap-grow-unlocked", 250, 15),
    ("mprotect-locked-no-cow", 250, 16),
    ("mseal-hole-seals-head", 400, 17),  # sealing is reached less often
]


class Beside:
    """compare() as check() calls it, with the full comparison run beside every
    shortcut taken."""

    def __init__(self) -> None:
        self.shortcuts = 0
        self.known_steps: list[int] = []
        self.full = 0
        self.mismatches: list[tuple[Step, list[Divergence], list[Divergence]]] = []
        # PG_mlocked is settled (the executor's drain) only in marker mode: no injection
        self.read_flags = True

    def __call__(self, step: Step, pred: Prediction, state: State, snap: Snapshot,
                 where: str = "", known: bool = False,
                 judged: tuple[int, int] | None = None) -> list[Divergence]:
        found = compare(step, pred, state, snap, where, known, judged)
        if known:
            self.shortcuts += 1
            self.known_steps.append(step.index)
            # the full comparison reads the pages' PG_mlocked too, which the shortcut
            # leaves unread (the process is stopped: its frames' flags are readable)
            flags, judged = page_flags(), mlocked.expected(state)
            if flags is not None and self.read_flags:
                snap = replace(snap, mlocked=flags.mlocked(snap.pagemap, snap.zero_pfn,
                                                           judged[0] | judged[1]))
            whole = compare(step, pred, state, snap, where)
            if whole != found:
                self.mismatches.append((step, found, whole))
        else:
            self.full += 1
        return found


@pytest.fixture
def beside(monkeypatch: pytest.MonkeyPatch) -> Iterator[Beside]:
    b = Beside()
    monkeypatch.setattr(check_program, "compare", b)
    yield b


@pytest.mark.parametrize(("injection", "count", "seed"), RUNS)
def test_the_shortcut_finds_what_the_full_comparison_finds(
        beside: Beside, injection: str, count: int, seed: int) -> None:
    injections = [load(injection)] if injection else None
    beside.read_flags = not injection
    diverged = 0
    with Supervisor(executor_path(), injections=injections) as supervisor:
        for program in workload(count, seed):
            try:
                report = check(supervisor, program)
            except Unsupported:
                continue
            diverged += bool(report.divergences)
    assert beside.mismatches == []
    # not vacuous: the shortcut was taken often, and the full comparison ran beside it
    assert beside.shortcuts > count and beside.full > count
    if injection:
        assert diverged > 0  # the injection made the kernel disagree somewhere


class LockAllSkipped(Injection):
    """mlockall and munlockall return 0 and do nothing: the model's state changes outside
    the arena's pages (the executor's own VMAs), the kernel's /proc does not."""

    name = "lockall-skipped"
    description = "mlockall() and munlockall() return 0 and do nothing."

    def on_entry(self, call: Syscall) -> EntryAction:
        return Skip(0) if call.name in ("mlockall", "munlockall") else None


# In each, the call before the last fails and changes nothing (a shortcut), so that the
# last step meets the snapshot the caller agreed with: only the key can tell it changed.
CRAFTED = [
    "mprotect(@0, 1p, 0x99)\nmprotect(@0, 1p, 0x99)\nmlockall(MCL_CURRENT)\n",
    "mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
    "mprotect(@0, 1p, 0x99)\nmlockall(MCL_CURRENT|MCL_ONFAULT)\n",
]


@pytest.mark.parametrize("text", CRAFTED)
def test_a_state_change_outside_the_pages_is_not_taken_for_known(
        beside: Beside, text: str) -> None:
    program = parse(text)
    last = len(program.calls) - 1
    with Supervisor(executor_path(), injections=[LockAllSkipped()]) as supervisor:
        report = check(supervisor, program)
    assert beside.mismatches == []
    assert last - 1 in beside.known_steps and last not in beside.known_steps
    assert [(d.kind, d.step) for d in report.divergences][:1] == [("lock", last)]
