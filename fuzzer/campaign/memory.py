"""A campaign's memory: the RSS of its processes over time, and what a worker's heap grows by.

`RssSampler` (for `mmfuzz bench memory`) reads, every few seconds in a thread of
the campaign process, its own RSS and its workers' (its child processes running
fuzzer.campaign); `growth` (pure) says how much each grew after a warm-up, in
MB and MB a minute: the figure a long campaign is held to (flat after warm-up).

`settled_heap` sets Python's cyclic garbage collector for a process that checks programs
one after another (a campaign worker, the throughput benchmark).

`MemTrace` is an opt-in diagnostic of a worker's Python heap: with
MMFUZZ_TRACEMALLOC=DIR in the environment of `mmfuzz run`, each worker traces
its Python allocations (tracemalloc, which slows it down a lot) and every
MMFUZZ_TRACEMALLOC_EVERY seconds (60 by default) appends to
DIR/tracemalloc-worker-N.txt its RSS, the size of the traced heap, and the 20
source lines whose allocations grew most since its last report. RSS growing more
than the traced heap is native growth (libFuzzer, Atheris, C extensions, malloc's
fragmentation).
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ENV = "MMFUZZ_TRACEMALLOC"
ENV_EVERY = "MMFUZZ_TRACEMALLOC_EVERY"
TOP = 20
WORKER_MARK = "fuzzer.campaign."  # in a worker's command line (worker, guest_worker)


# The collector's thresholds in a checking process. Nearly every object a checked step makes
# is freed by its reference count when the step ends; what lives on (modules, caches, the
# corpus) is long-lived. With Python's defaults (700, 10, 10) a 1-worker campaign ran the
# collector 1,400 times a minute, and each full pass walked everything imported at start:
# 1.35 s of 55 (2.5 % of the worker). With these thresholds, and what exists at the start
# frozen out of the passes, it took 0.53 s: gen0 passes are fewer and longer, and no
# full pass came in a minute. Cycles are still collected, at the first gen0 pass after
# them (tests/test_memory.py).
GC_THRESHOLDS = (10_000, 50, 100)


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """For the block: every object alive at its start frozen out of the collector's passes
    (the process's long-lived ones: enter it once start-up is done), and GC_THRESHOLDS.
    Both are undone after it (a benchmark run inside the test suite)."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def rss_kb(pid: int | str = "self") -> int:
    """A process's resident set size in kB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_pids(parent: int) -> list[int]:
    """The parent's child processes that are campaign workers, by pid."""
    found = []
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        return []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if WORKER_MARK.encode() in cmdline:
            found.append(int(child))
    return sorted(found)


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the sampler started
    rss: dict[str, int]  # process ("campaign", "worker PID") -> kB


class RssSampler:
    """Samples this process and its workers every `every` seconds, in a thread, until
    stopped; `on_sample` sees each sample as it is taken."""

    def __init__(self, every: float, on_sample: Callable[[Sample], None] = lambda s: None
                 ) -> None:
        self.every, self.on_sample = every, on_sample
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._started = time.monotonic()

    def start(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join()
        return self.samples

    def sample(self) -> Sample:
        me = os.getpid()
        rss = {"campaign": rss_kb(me)}
        for pid in worker_pids(me):
            kb = rss_kb(pid)
            if kb:
                rss[f"worker {pid}"] = kb
        return Sample(round(time.monotonic() - self._started, 1), rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            s = self.sample()
            self.samples.append(s)
            self.on_sample(s)


@dataclass(frozen=True)
class Growth:
    process: str
    first: tuple[float, int]  # (seconds, kB) of its first sample at or after the warm-up
    last: tuple[float, int]  # ... and of its last

    @property
    def mb(self) -> float:
        return (self.last[1] - self.first[1]) / 1024

    @property
    def mb_per_min(self) -> float:
        minutes = (self.last[0] - self.first[0]) / 60
        return self.mb / minutes if minutes > 0 else 0.0


def growth(samples: list[Sample], warmup: float) -> list[Growth]:
    """Each process's growth from its first sample at or after `warmup` seconds to its
    last (pure); processes sampled fewer than twice after it are left out."""
    seen: dict[str, list[tuple[float, int]]] = {}
    for s in samples:
        if s.at < warmup:
            continue
        for process, kb in s.rss.items():
            seen.setdefault(process, []).append((s.at, kb))
    return [Growth(p, points[0], points[-1]) for p, points in seen.items() if len(points) > 1]


class MemTrace:
    """Reports to `path` every `every` seconds, from its start."""

    def __init__(self, path: Path, every: float) -> None:
        self.path, self.every = path, every
        tracemalloc.start(1)
        self.started = self.next = time.monotonic()
        self.last: tracemalloc.Snapshot | None = None

    @classmethod
    def from_env(cls, worker: int) -> MemTrace | None:
        folder = os.environ.get(ENV)
        if not folder:
            return None
        every = float(os.environ.get(ENV_EVERY, "60"))
        Path(folder).mkdir(parents=True, exist_ok=True)
        return cls(Path(folder) / f"tracemalloc-worker-{worker}.txt", every)

    def tick(self, now: float) -> None:
        if now < self.next:
            return
        self.next = now + self.every
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        traced, peak = tracemalloc.get_traced_memory()
        lines = [f"--- {now - self.started:.0f} s: rss {rss_kb()} kB, "
                 f"traced {traced // 1024} kB (peak {peak // 1024} kB)"]
        if self.last is not None:
            lines += [f"  {stat}" for stat in snap.compare_to(self.last, "lineno")[:TOP]]
        self.last = snap
        with self.path.open("a") as f:
            f.write("\n".join(lines) + "\n")
