"""What a report shows, gathered from the store into plain values.

The scope is one campaign or the whole database. Times are seconds since the
scope's start (the campaign's, or the first campaign's), so charts of several
campaigns share one axis; one campaign's are its running time (CampaignRow.seconds),
so a resumed campaign's runs make one curve, without the pauses between them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from fuzzer.reduce.variants_summary import summary_lines
from fuzzer.store import BucketDetail, CampaignRow, PointRow, Store

Point = tuple[float, float]
Clock = Callable[[datetime], float]  # a moment as seconds on the report's axis


@dataclass(frozen=True)
class BucketLine:
    """One bucket as the report's table shows it."""

    id: int
    title: str
    kind: str
    status: str
    count: int  # samples in scope
    first_seen: datetime
    duplicate_of: int | None
    kernels: dict[str, int]  # release -> samples in scope
    reliability: str  # "5/5", or "" when not measured
    minimized: str  # "16 -> 2 calls", or ""
    variants: tuple[str, ...] = ()  # the summary of its variants (reduce/variants_summary.py)


@dataclass(frozen=True)
class ReportData:
    scope: str  # "campaign 3", or "every campaign"
    where: str  # the database, for people
    generated: datetime
    campaigns: list[CampaignRow]
    buckets: list[BucketLine]
    opened: list[Point]  # (seconds, buckets opened so far), one point per bucket
    outcomes: list[tuple[str, dict[str, int]]]  # per call: outcome -> steps
    rates: dict[str, list[Point]] = field(default_factory=dict)  # series -> (s, programs/s)
    coverage: dict[str, list[Point]] = field(default_factory=dict)  # series -> (s, features)

    @property
    def kernels(self) -> list[str]:
        return sorted({k for b in self.buckets for k in b.kernels}
                      | {c.kernel for c in self.campaigns})


def gather(store: Store, campaign_id: int | None = None) -> ReportData:
    """Everything the report shows, for one campaign or (None) the whole database."""
    campaigns = ([store.campaign(campaign_id)] if campaign_id is not None
                 else sorted(store.campaigns(), key=lambda c: c.id))
    start = min((c.started for c in campaigns), default=datetime.now(UTC))
    clock: Clock = (campaigns[0].seconds if campaign_id is not None
                    else lambda when: (when - start).total_seconds())
    wanted = {c.id for c in campaigns}
    lines: list[BucketLine] = []
    for row in store.buckets(include_labelled=True, sort="id"):
        line = _bucket_line(store.bucket(row.id), wanted if campaign_id is not None else None)
        if line is not None:
            lines.append(replace(line, variants=tuple(summary_lines(store.variants(row.id)))))
    opened = sorted(clock(line.first_seen) for line in lines)
    outcomes: dict[str, Counter[str]] = {}
    for op in store.op_counts(campaign_id):
        if op.what == "outcome":
            outcomes.setdefault(op.call, Counter())[op.value] += op.count
    return ReportData(
        scope=f"campaign {campaign_id}" if campaign_id is not None else "every campaign",
        where=store.url, generated=datetime.now(UTC), campaigns=campaigns, buckets=lines,
        opened=_opened(opened, _end(campaigns, clock)),
        outcomes=sorted(((call, dict(c)) for call, c in outcomes.items()),
                        key=lambda kv: -sum(kv[1].values())),
        rates=_rates(store.points(campaign_id), clock, {c.id: c for c in campaigns},
                     several=campaign_id is None),
        coverage=_coverage(store.corpus_features(sorted(wanted)), clock,
                           several=campaign_id is None))


def _end(campaigns: list[CampaignRow], clock: Clock) -> float:
    """Seconds from the scope's start to its end: the last campaign's end, or now."""
    ends = [c.ended if c.ended is not None else datetime.now(UTC) for c in campaigns]
    return max((clock(e) for e in ends), default=0.0)


def _opened(times: list[float], end: float) -> list[Point]:
    """The staircase of buckets opened: from none at the start to all at the end."""
    points = [(0.0, 0.0)] + [(max(0.0, t), float(i + 1)) for i, t in enumerate(times)]
    return [*points, (max(end, points[-1][0]), float(len(times)))]


def _bucket_line(b: BucketDetail, campaigns: set[int] | None) -> BucketLine | None:
    """The bucket's line, counting only samples of the given campaigns (None: all);
    None when it has no sample there."""
    samples = [s for s in b.samples if campaigns is None or s.campaign_id in campaigns]
    if not samples:
        return None
    reliability = (f"{b.reliability_hits}/{b.reliability_runs}"
                   if b.reliability_runs else "")
    minimized = (f"{b.original_calls} → {b.minimized_calls} calls"
                 if b.minimized_calls is not None else "")
    return BucketLine(b.id, b.title, b.kind, b.status, len(samples),
                      min(s.created for s in samples), b.duplicate_of,
                      dict(Counter(s.kernel for s in samples)), reliability, minimized)


def _coverage(entries: list[tuple[int, datetime, list[str]]], clock: Clock, *,
              several: bool) -> dict[str, list[Point]]:
    """Distinct semantic features each campaign had reached over time, from its corpus
    entries (each names the features it reached first), plus the union over campaigns."""
    series: dict[str, list[Point]] = {}
    seen: dict[str, set[str]] = {}
    for campaign, when, features in entries:
        t = clock(when)
        names = [f"campaign {campaign}"] + (["all campaigns"] if several else [])
        for name in names:
            got = seen.setdefault(name, set())
            got.update(features)
            series.setdefault(name, [(0.0, 0.0)]).append((t, float(len(got))))
    return series


def _rates(points: list[PointRow], clock: Clock, campaigns: dict[int, CampaignRow], *,
           several: bool) -> dict[str, list[Point]]:
    """Programs/s of each worker between its consecutive progress points, at the later
    one, over its campaign's running time (a resumed campaign's pause is no slow
    stretch). A worker that restarted counts from zero again (in older databases; its
    points now go on from its totals, as a resumed campaign's do)."""
    series: dict[str, list[Point]] = {}
    last: dict[tuple[int, int], PointRow] = {}
    for p in points:
        key = (p.campaign_id, p.worker)
        prev = last.get(key)
        last[key] = p
        if prev is None:
            continue
        row = campaigns.get(p.campaign_id)
        seconds = (row.seconds(p.at) - row.seconds(prev.at) if row is not None
                   else (p.at - prev.at).total_seconds())
        if seconds <= 0:
            continue
        done = p.programs - prev.programs if p.programs >= prev.programs else p.programs
        name = f"campaign {p.campaign_id} worker {p.worker}" if several else f"worker {p.worker}"
        series.setdefault(name, []).append((clock(p.at), done / seconds))
    return series
