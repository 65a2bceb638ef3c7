"""Benchmarks: throughput of one worker over a fixed, generated workload.

The workload is deterministic (programs decoded from seeded random bytes), so
two runs compare like with like. Besides the end-to-end rate it times the
Python-only part of the same workload (generation, model, a comparison against
a stored snapshot) so the share of the kernel side shows as a ratio from the
same run.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from fuzzer.model import SUPPORTED, State, step
from fuzzer.oracle import compare
from fuzzer.prog import Program
from fuzzer.prog.generate import ByteSource, generate
from fuzzer.trace import Supervisor, check


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
    return [generate(ByteSource(rng.randbytes(256)), SUPPORTED) for _ in range(count)]


def throughput(supervisor: Supervisor, count: int = 1000, seed: int = 1) -> Throughput:
    programs = workload(count, seed)
    steps = diverged = 0
    snapshots = []
    start = time.perf_counter()
    for program in programs:
        report = check(supervisor, program)
        steps += len(report.steps)
        diverged += bool(report.divergences)
        snapshots.append(report.snapshot)
    seconds = time.perf_counter() - start

    start = time.perf_counter()
    rng = random.Random(seed)
    for program, snap in zip(programs, snapshots, strict=True):
        generate(ByteSource(rng.randbytes(256)), SUPPORTED)
        state = State()
        for i, call in enumerate(program.calls):
            pred = step(state, call)
            if snap is not None:
                compare(i, call, pred, state, pred.ret, pred.signal, snap)
    model_seconds = time.perf_counter() - start
    return Throughput(len(programs), steps, seconds, diverged, model_seconds)
