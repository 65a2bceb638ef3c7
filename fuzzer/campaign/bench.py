"""Benchmarks: how fast emulated kernel bugs are found, and the semantic features a
corpus folder reaches; the throughput of one worker is throughput.py's (here too).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fuzzer.campaign.options import DEFAULTS, Options
from fuzzer.campaign.run import CampaignError, run_campaign
from fuzzer.check import check
from fuzzer.kernel import GUEST_MEM
from fuzzer.model import Unsupported
from fuzzer.prog import ProgramError, parse
from fuzzer.store import Store
from fuzzer.trace import Supervisor


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
    the given search (Options.search). Each starts from nothing stored (Options.fresh):
    planted the corpus and buckets of the runs before it, a run would replay the program
    an earlier one found."""
    rows = []
    for name in ([None] if baseline else []) + list(names):
        found = []
        for seed in range(1, runs + 1):
            opts = Options(db=db, time=seconds, seed=seed, stop_on_first=True,
                           injections=() if name is None else (name,),
                           kernel=kernel, guest_mem=guest_mem, search=search, fresh=True)
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
