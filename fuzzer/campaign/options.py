"""A campaign's options, written once: their defaults, and how they travel to workers.

`Options` is what a campaign was asked for (its fields, with their defaults,
are what `mmfuzz run` offers and what the campaign row stores). A `Job` is one
worker's share of it: the options as that worker is to use them (its own seed;
the seed programs go to the first worker only), the campaign it writes into and
the CPU it is pinned to, and when it must end. A Job crosses process boundaries as one JSON text:
`python -m fuzzer.campaign.worker JOB`, the guest worker likewise, and inside
the request that starts a worker in a guest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from fuzzer.kernel.spec import GUEST_MEM
from fuzzer.store import DEFAULT_URL


@dataclass(frozen=True)
class Options:
    db: str = DEFAULT_URL
    time: float = 60  # an int literal: `mmfuzz run --help` shows "60", as it always has
    runs: int = 0  # per worker; 0 = no limit
    workers: int = 1
    seed: int = 0
    budget: float = 5.0
    corpus: Path | None = None
    seeds: Path | None = None
    injections: tuple[str, ...] = ()  # injection specs (a catalogue name or FILE.py:NAME)
    stop_on_first: bool = False  # end each worker at its first divergence (benchmarks)
    calls: tuple[str, ...] = ()  # generate only these calls (empty: every modelled call)
    minimize_budget: int = 100  # runs to minimize each new bucket with (0: do not)
    crashes: Path | None = None  # where new buckets' folders go (None: nowhere)
    explore: float = 0.25  # share of inputs decoded from fresh random bytes
    # What libFuzzer's inputs are: "programs" (program text, changed by the program
    # mutator, prog/mutate.py), "bytes" (bytes the generator decodes, changed by
    # libFuzzer's byte mutations), "random" (every input generated afresh).
    search: str = "programs"
    # What libFuzzer counts as coverage: "semantic" features of the checked programs
    # (fuzzer/check/coverage.py), "lines" of the instrumented model and generator
    # (the older feedback), or "both".
    feedback: str = "semantic"
    kernel: str = "host"  # or "uml:PATH": workers run in User-Mode Linux guests (fuzzer/kernel)
    guest_mem: int = GUEST_MEM  # MiB of memory per guest
    kernel_name: str = ""  # the user's name for the kernel's build (`--kernel ...#NAME`)
    cpus: str = ""  # CPUs to pin workers to, as `mmfuzz run --cpus` takes them ("": any free)
    # A worker whose RSS passes this many MiB ends, and is started again at once with the
    # corpus from the database (libFuzzer's in-memory corpus grows with the search). 0: never.
    worker_rss: int = 192
    # Start from nothing other campaigns stored: neither their corpus entries, nor the
    # buckets' minimized programs, nor the corpus folder's files are planted (its own
    # entries are, when it is resumed). `bench detect` sets it, so that each of its runs
    # is independent of the runs before it; `mmfuzz run --fresh` too.
    fresh: bool = False

    def as_json(self) -> dict[str, object]:
        """JSON-able, field by field: paths as text, tuples as lists."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Options:
        """The inverse of as_json."""
        return cls._of(data, strict=True)

    @classmethod
    def stored(cls, data: dict[str, object]) -> Options:
        """The options a campaign row stored (its other keys are left out); a field the
        mmfuzz that wrote it did not have yet takes its default, which it behaved as."""
        return cls._of(data, strict=False)

    @classmethod
    def _of(cls, data: dict[str, object], *, strict: bool) -> Options:
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name not in data and (not strict or f.name == "kernel_name"):
                continue  # a field its writer did not have yet (builds had no names once)
            value = data[f.name]
            if f.name in _PATHS:
                value = None if value is None else Path(str(value))
            elif isinstance(value, list):
                value = tuple(str(v) for v in value)
            values[f.name] = value
        return cls(**values)  # type: ignore[arg-type]


_PATHS = frozenset({"corpus", "seeds", "crashes"})
SEARCHES = ("programs", "bytes", "random")
FEEDBACKS = ("semantic", "lines", "both")
# The db of a worker in a guest kernel: its store is a proxy over the guest's serial line.
GUEST_DB = "guest:"
DEFAULTS = Options()


@dataclass(frozen=True)
class Job:
    """One worker's share of a campaign."""

    options: Options
    campaign: int
    cpu: int | None = None  # None: not pinned
    features: dict[str, object] = field(default_factory=dict)  # a guest kernel's, probed once
    worker: int = 0  # its index in the campaign (progress points, logs)
    # The worker's scratch folder: libFuzzer's artifacts, spooled writes (spool.py).
    scratch: str | None = None
    # The worker's running totals (programs, steps) before this process started (its
    # earlier processes, the campaign's earlier runs): its progress points go on from them.
    totals: tuple[int, int] = (0, 0)
    # When the worker must end, on time.monotonic() of the machine it runs on: the
    # campaign's own deadline for a process of this host (one clock for all of them).
    # None: options.time from the worker's start. A guest has a clock of its own, so
    # its worker is sent the seconds left (options.time) and sets this itself.
    deadline: float | None = None

    def to_json(self) -> str:
        return json.dumps({"options": self.options.as_json(), "campaign": self.campaign,
                           "cpu": self.cpu, "features": self.features, "worker": self.worker,
                           "scratch": self.scratch, "totals": list(self.totals),
                           "deadline": self.deadline})

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        scratch, deadline = data.get("scratch"), data.get("deadline")
        programs, steps = data.get("totals", (0, 0))
        return cls(Options.from_json(data["options"]), int(data["campaign"]),
                   None if data["cpu"] is None else int(data["cpu"]), dict(data["features"]),
                   int(data.get("worker", 0)), None if scratch is None else str(scratch),
                   (int(programs), int(steps)), None if deadline is None else float(deadline))


def _plain(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value
