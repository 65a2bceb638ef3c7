"""Benchmarks: throughput of one worker, how fast emulated kernel bugs are found, and
the semantic features a corpus folder reaches.

The workload is deterministic (programs decoded from seeded random bytes), so
two runs compare like with like. Besides the end-to-end rate it times the
Python-only part of the same workload (generation, model, a comparison against
a stored snapshot) so the share of the kernel side shows as a ratio from the
same run.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fuzzer.campaign.options import DEFAULTS, Options
from fuzzer.campaign.run import CampaignError, run_campaign
from fuzzer.check import StepReport, check, initial_state
from fuzzer.kernel import GUEST_MEM
from fuzzer.model import SUPPORTED, State, Unsupported, covers
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.observe import Snapshot
from fuzzer.oracle import compare
from fuzzer.prog import Program, ProgramError, parse
from fuzzer.prog.generate import ByteSource, generate
from fuzzer.store import Store
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


def workload(count: int, seed: int) -> list[Program]:
    rng = random.Random(seed)
    return [generate(ByteSource(rng.randbytes(256)), SUPPORTED, covers) for _ in range(count)]


def throughput(supervisor: Supervisor, count: int = 1000, seed: int = 1,
               ran: list[tuple[Program, int]] | None = None) -> Throughput:
    """The workload checked by one supervisor. `ran`, if given, receives each counted
    program with the number of steps it was checked for (the ceiling's and the
    breakdown's workload: the same programs, as far as the product ran them)."""
    programs = workload(count, seed)
    steps = diverged = 0
    # each run's first snapshot, and each step with the snapshot it was compared with
    seen: list[tuple[Snapshot, list[tuple[StepReport, Snapshot | None]]]] = []
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


@dataclass(frozen=True)
class Detection:
    """One injection's row of the detection benchmark."""

    injection: str  # "(none)" for the baseline without injection
    runs: int
    found: list[dict[str, object]]  # the first divergence of each run that found one

    @property
    def detected(self) -> int:
        return len(self.found)

    def _values(self, key: str) -> list[float]:
        return sorted(float(str(f[key])) for f in self.found)

    def median_seconds(self) -> float | None:
        values = self._values("seconds")
        return statistics.median(values) if values else None

    def worst_seconds(self) -> float | None:
        values = self._values("seconds")
        return values[-1] if values else None

    def as_dict(self) -> dict[str, object]:
        return {"injection": self.injection, "runs": self.runs, "detected": self.detected,
                "median_seconds": self.median_seconds(), "worst_seconds": self.worst_seconds(),
                "found": self.found}


def detect(
    store: Store,
    db: str,
    names: list[str],
    runs: int,
    seconds: float,
    baseline: bool = True,
    progress: Callable[[str], None] = lambda line: None,
    kernel: str = "host",
    guest_mem: int = GUEST_MEM,
    search: str = DEFAULTS.search,
) -> list[Detection]:
    """K campaigns per injection (seeds 1..K), each stopping at its first divergence;
    on `kernel` (host, or uml:PATH: the campaigns run in User-Mode Linux guests), with
    the given search (Options.search)."""
    rows = []
    for name in ([None] if baseline else []) + list(names):
        found = []
        for seed in range(1, runs + 1):
            opts = Options(db=db, time=seconds, seed=seed, stop_on_first=True,
                           injections=() if name is None else (name,),
                           kernel=kernel, guest_mem=guest_mem, search=search)
            result = run_campaign(store, opts, show=lambda p: None, every=1e9)
            if result.status == "interrupted":
                raise KeyboardInterrupt  # Ctrl-C or SIGTERM ends the benchmark, not one run
            if result.status == "failed":
                raise CampaignError(result.error or f"campaign {result.campaign_id} failed")
            label = name or "(none)"
            if result.first is not None:
                found.append(result.first)
                progress(f"{label} seed {seed}: {result.first['title']} "
                         f"after {float(str(result.first['seconds'])):.1f} s")
            else:
                progress(f"{label} seed {seed}: nothing in {seconds:g} s")
        rows.append(Detection(name or "(none)", runs, found))
    return rows


@dataclass(frozen=True)
class CorpusCoverage:
    folder: str
    programs: int  # files that are programs, checked
    other: int  # files that are not (a byte search's inputs) or that the model refuses
    features: frozenset[str]


def corpus_coverage(folder: Path, supervisor: Supervisor) -> CorpusCoverage:
    """Check every program of a corpus folder once: the semantic features they reach
    together (what a campaign's kept inputs cover, whichever mmfuzz kept them)."""
    programs = other = 0
    reached: set[str] = set()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            program = parse(path.read_bytes().decode(), str(path))
            reached |= check(supervisor, program, ranges=True).features()
        except (UnicodeDecodeError, ProgramError, Unsupported):
            other += 1
            continue
        programs += 1
    return CorpusCoverage(str(folder), programs, other, frozenset(reached))
