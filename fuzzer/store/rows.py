"""What the Store hands out: frozen dataclasses, detached from any session.

Fields added after the first release have defaults, so code that builds a row
by hand (tests, fakes) keeps working.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from fuzzer.store.db import StoreError
from fuzzer.store.identity import KernelId
from fuzzer.store.models import Bucket, Campaign, Program, Reliability, Sample
from fuzzer.store.values import injection_names, injections_column


@dataclass(frozen=True)
class CampaignRow:
    id: int
    kernel: str
    host: str
    options: dict[str, object]
    started: datetime
    ended: datetime | None
    programs: int
    steps: int
    divergences: int
    status: str
    heartbeat: datetime | None = None  # last sign of life of its process; None: never stamped
    alive: int | None = None  # workers alive at that heartbeat
    # Its later runs (`mmfuzz run --resume`): (when each started, the seconds the
    # campaign had run before it), oldest first; () for a campaign run once.
    resumed: tuple[tuple[datetime, float], ...] = ()

    @property
    def runs(self) -> tuple[tuple[datetime, float], ...]:
        """Every run: (its start, the campaign's seconds before it), the first at 0 s."""
        return ((self.started, 0.0), *self.resumed)

    def seconds(self, when: datetime) -> float:
        """A moment of the campaign as seconds of its own running time: from its start,
        without the pauses between its runs (a moment in a pause counts as the end of
        the run before it). The axis of its growth curves across resumes."""
        runs = self.runs
        i = max((k for k, (start, _) in enumerate(runs) if start <= when), default=0)
        start, before = runs[i]
        at = before + (when - start).total_seconds()
        if i + 1 < len(runs):
            at = min(at, runs[i + 1][1])
        return max(0.0, at)

    def ran(self, end: datetime) -> float:
        """Seconds the campaign has run, over all its runs, its last one ending at `end`."""
        start, before = self.runs[-1]
        return before + max(0.0, (end - start).total_seconds())
    build: str | None = None  # the kernel's `uname -v`; None: not recorded
    binary: str | None = None  # the UML binary's hash; None: the host, or not recorded
    kernel_name: str | None = None  # the user's name for the build

    @property
    def kernel_id(self) -> KernelId:
        return KernelId(self.kernel, self.build, self.binary, self.kernel_name)

    @property
    def target(self) -> str:
        """The --kernel it ran with ("host" or "uml:PATH"), from its options."""
        return str(self.options.get("kernel") or "host")


@dataclass(frozen=True)
class PointRow:
    """A worker's running totals at one moment (models.ProgressPoint)."""

    campaign_id: int
    worker: int
    at: datetime
    programs: int
    steps: int


@dataclass(frozen=True)
class BucketRow:
    id: int
    title: str
    kind: str
    first_seen: datetime
    last_seen: datetime
    count: int
    status: str
    note: str | None
    duplicate_of: int | None = None  # set only when status is "duplicate"
    reliability_hits: int | None = None  # None: not measured
    reliability_runs: int | None = None
    original_calls: int | None = None  # None: not minimized
    minimized_calls: int | None = None


@dataclass(frozen=True)
class SampleRow:
    program_text: str
    program_hash: str
    step: int
    expected: str
    observed: str
    kernel: str
    campaign_id: int | None
    created: datetime
    injections: tuple[str, ...] = ()  # the injections' names; () on a real kernel
    features: dict[str, object] | None = None  # the kernel's probed features; None: not recorded
    build: str | None = None  # the kernel's `uname -v`; None: not recorded
    symptoms: tuple[str, ...] = ()  # the other divergences of the step, by title
    binary: str | None = None  # the UML binary's hash (from its campaign); None: host/unknown
    kernel_name: str | None = None  # the build's name (from its campaign)

    @property
    def kernel_id(self) -> KernelId:
        return KernelId(self.kernel, self.build, self.binary, self.kernel_name)


@dataclass(frozen=True)
class ReliabilityRow:
    """A bucket's reliability on one kernel build (models.Reliability)."""

    kernel: str
    build: str | None
    binary: str | None
    kernel_name: str | None
    hits: int
    runs: int
    at: datetime

    @property
    def kernel_id(self) -> KernelId:
        return KernelId(self.kernel, self.build, self.binary, self.kernel_name)


@dataclass(frozen=True, kw_only=True)
class BucketDetail(BucketRow):
    samples: list[SampleRow]  # oldest first
    minimized_program_text: str | None = None
    minimized_program_hash: str | None = None
    minimized_step: int | None = None  # the diverging step of the minimized program
    minimized_expected: str | None = None  # the minimized program's expected and observed
    minimized_observed: str | None = None
    reliabilities: tuple[ReliabilityRow, ...] = ()  # per kernel build, oldest first

    def to_json(self) -> dict[str, object]:
        """As dataclasses.asdict, but each sample's injections as stored: comma-separated."""
        data = asdict(self)
        data["samples"] = [{**s, "injections": injections_column(s["injections"])}
                           for s in data["samples"]]
        return data


def campaign_row(c: Campaign) -> CampaignRow:
    # SQLite keeps whatever a damaged page holds: a column of the wrong type is damage.
    for name, kind in (("kernel", str), ("host", str), ("status", str), ("programs", int),
                       ("steps", int), ("divergences", int)):
        if not isinstance(getattr(c, name), kind):
            raise StoreError(f"the database is damaged: campaign {c.id}'s {name} is not "
                             f"{'text' if kind is str else 'a number'}")
    return CampaignRow(
        id=c.id,
        kernel=c.kernel,
        host=c.host,
        options=_json_object(c.options, f"campaign {c.id}'s options"),
        started=c.started,
        ended=c.ended,
        programs=c.programs,
        steps=c.steps,
        divergences=c.divergences,
        status=c.status,
        heartbeat=c.heartbeat,
        alive=c.alive,
        resumed=_runs(c.runs, c.id),
        build=c.build,
        binary=c.binary,
        kernel_name=c.kernel_name,
    )


def _runs(text: str | None, cid: int) -> tuple[tuple[datetime, float], ...]:
    """The `runs` column: [[ISO time, seconds], ...] (models.Campaign.runs)."""
    if text is None:
        return ()
    try:
        return tuple((datetime.fromisoformat(str(when)), float(before))
                     for when, before in json.loads(text))
    except (ValueError, TypeError) as e:
        raise StoreError(f"the database is damaged: campaign {cid}'s runs are not a list "
                         f"of [time, seconds]: {e}") from e


def bucket_row(b: Bucket) -> BucketRow:
    return BucketRow(
        id=b.id,
        title=b.title,
        kind=b.kind,
        first_seen=b.first_seen,
        last_seen=b.last_seen,
        count=b.count,
        status=b.status,
        note=b.note,
        duplicate_of=b.duplicate_of,
        reliability_hits=b.reliability_hits,
        reliability_runs=b.reliability_runs,
        original_calls=b.original_calls,
        minimized_calls=b.minimized_calls,
    )


def sample_row(sample: Sample, program: Program) -> SampleRow:
    return SampleRow(
        program_text=program.text,
        program_hash=program.hash,
        step=sample.step,
        expected=sample.expected,
        observed=sample.observed,
        kernel=sample.kernel,
        campaign_id=sample.campaign_id,
        created=sample.created,
        injections=injection_names(sample.injections),
        features=(_json_object(sample.features, "a sample's features")
                  if sample.features is not None else None),
        build=sample.build,
        symptoms=tuple(json.loads(sample.symptoms)) if sample.symptoms else (),
        binary=sample.binary,
        kernel_name=sample.kernel_name,
    )


def reliability_row(r: Reliability) -> ReliabilityRow:
    return ReliabilityRow(r.kernel, r.build, r.binary, r.kernel_name, r.hits, r.runs, r.at)


def bucket_detail(b: Bucket, samples: list[SampleRow], minimized: Program | None,
                  reliabilities: tuple[ReliabilityRow, ...] = ()) -> BucketDetail:
    return BucketDetail(
        **vars(bucket_row(b)),
        samples=samples,
        minimized_program_text=minimized.text if minimized else None,
        minimized_program_hash=minimized.hash if minimized else None,
        minimized_step=b.minimized_step if minimized else None,
        minimized_expected=b.minimized_expected if minimized else None,
        minimized_observed=b.minimized_observed if minimized else None,
        reliabilities=reliabilities,
    )


def _json_object(text: str, what: str) -> dict[str, object]:
    """A JSON object column, or the StoreError of a damaged database (one line)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StoreError(f"the database is damaged: {what} is not a JSON object")
    return value
