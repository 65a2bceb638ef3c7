"""The throughput benchmark: one worker's programs/s and checked steps/s.

The workload is deterministic (programs decoded from seeded random bytes, or
the programs of a folder, such as a campaign's corpus), so two runs compare
like with like. Besides the end-to-end rate it times the
Python-only part of the same workload (generation, model, a comparison against
a stored snapshot) so the share of the kernel side shows as a ratio from the
same run. It imports nothing of the campaign but memory.py's
collector settings (target.py runs it on the host, guest.py in a guest).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fuzzer.campaign.memory import settled_heap
from fuzzer.check import StepReport, check, initial_state
from fuzzer.model import SUPPORTED, State, Unsupported, covers
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.observe import Snapshot
from fuzzer.oracle import compare
from fuzzer.prog import Program, ProgramError, parse
from fuzzer.prog.generate import ByteSource, generate
from fuzzer.trace import Supervisor


@dataclass(frozen=True)
class Throughput:
    programs: int
    steps: int
    seconds: float
    divergent_programs: int
    model_seconds: float  # generation + model + oracle alone, same workload

    @property
    def programs_per_s(self) -> float:
        return self.programs / self.seconds

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds


def workload(count: int, seed: int, texts: Sequence[str] = ()) -> list[Program]:
    """`count` programs decoded from seeded random bytes; with `texts`, the first
    `count` of those that are programs on this kernel's arena (a folder's files,
    read by the caller: a host program with a wrapping length is none in a guest)."""
    if texts:
        programs = []
        for text in texts:
            try:
                programs.append(parse(text))
            except ProgramError:
                continue
            if len(programs) == count:
                break
        return programs
    rng = random.Random(seed)
    return [generate(ByteSource(rng.randbytes(256)), SUPPORTED, covers) for _ in range(count)]


def throughput(supervisor: Supervisor, count: int = 1000, seed: int = 1,
               ran: list[tuple[Program, int]] | None = None,
               texts: Sequence[str] = ()) -> Throughput:
    """The workload checked by one supervisor. `ran`, if given, receives each counted
    program with the number of steps it was checked for (the ceiling's and the
    breakdown's workload: the same programs, as far as the product ran them)."""
    programs = workload(count, seed, texts)
    steps = diverged = 0
    # each run's first snapshot, and each step with the snapshot it was compared with
    seen: list[tuple[Snapshot, list[tuple[StepReport, Snapshot | None]]]] = []
    with settled_heap():  # as in a campaign's worker (memory.py)
        start = time.perf_counter()
        for program in programs:
            kept: list[tuple[StepReport, Snapshot | None]] = []

            def keep(rep: StepReport, state: State | None, snap: Snapshot | None,
                     kept: list[tuple[StepReport, Snapshot | None]] = kept) -> None:
                kept.append((rep, snap))

            try:
                report = check(supervisor, program, keep)
            except Unsupported:  # a case the model refuses by state: not timed work
                continue
            steps += len(report.steps)
            diverged += bool(report.divergences)
            if report.initial is not None:
                seen.append((report.initial, kept))
                if ran is not None:
                    ran.append((program, len(report.steps)))
        seconds = time.perf_counter() - start

        # The same Python work again (model steps and comparisons against the very
        # snapshots the run read), without the kernel: the rest of the run's time is
        # the kernel, ptrace and /proc.
        start = time.perf_counter()
        # (For a program that forks, only the caller's snapshot of each step is kept,
        # so the replay compares one process a step where the run compared all.)
        for initial, kept in seen:
            world = World.start(initial_state(initial))
            for rep, snap in kept:
                pred = world_step(world, rep.call)
                state = world.procs[rep.call.proc]
                if state is not None and snap is not None:
                    compare(rep.step, pred, state, snap)
        model_seconds = time.perf_counter() - start
    return Throughput(len(seen), steps, seconds, diverged, model_seconds)
