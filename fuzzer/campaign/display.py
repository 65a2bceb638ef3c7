"""A running campaign as people watch it: the state of its live view, and how it looks.

`LiveState` is fed what the campaign process sees (run.py's `watch`): every
worker message (progress, buckets), each worker's start and end, and the event
lines run.py says (a worker died, restarted). Time is never read here: every
update carries its own, in seconds since the campaign started. From it,
`render` makes the terminal's live view (a Rich renderable) and `plain_line`
the line printed every few seconds without a terminal; both show the rate over
the last WINDOW seconds next to the overall one, so a stall shows at once.
Events (a new bucket with its title, a worker's death) are kept as lines in
`events`, for the view's event list or a line of their own the moment they come.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fuzzer.campaign.seen import FeatureSet

WINDOW = 10.0  # seconds: the "now" rate is over this many seconds
GROWTH = 60.0  # seconds: features gained over this many
SLOW = 0.5  # a rate now under this share of the overall one is slow...
SETTLED = 2 * WINDOW  # ...once the campaign (or the worker) has run this long
NEWEST = 5  # bucket titles the view shows
EVENTS = 8  # event lines the view shows


@dataclass
class History:
    """A running total over time: its value after each change, as (at, value), enough
    of them kept to know its value `keep` seconds ago."""

    keep: float
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    value: int = 0

    def add(self, at: float, amount: int) -> None:
        if amount:
            self.set(at, self.value + amount)

    def set(self, at: float, value: int) -> None:
        self.value = value
        self.samples.append((at, value))
        # The oldest sample needed is the last one at or before at - keep.
        while len(self.samples) > 1 and self.samples[1][0] <= at - self.keep:
            self.samples.popleft()

    def before(self, at: float) -> int:
        """The total at time `at` (0 before its first change)."""
        found = 0
        for t, value in self.samples:
            if t > at:
                break
            found = value
        return found

    def since(self, now: float, seconds: float) -> int:
        """How much the total grew over the last `seconds` seconds."""
        return self.value - self.before(now - seconds)


def _rate(history: History, now: float, since: float = 0.0) -> float:
    """Per second over the last WINDOW seconds (fewer when it started less long ago)."""
    span = min(WINDOW, now - since)
    return history.since(now, span) / span if span > 0 else 0.0


@dataclass
class WorkerView:
    index: int
    state: str = "starting"  # starting, running, restarting, dead, done, stopped
    programs: History = field(default_factory=lambda: History(WINDOW))
    steps: int = 0
    starts: int = 0
    pid: int | None = None


@dataclass
class BucketSeen:
    id: int
    title: str
    new: bool  # opened by this campaign
    at: float  # first seen in this campaign
    hits: int = 1


@dataclass
class LiveState:
    kernel: str
    budget: float  # the campaign's time, seconds
    workers: dict[int, WorkerView] = field(default_factory=dict)
    campaign: int | None = None
    now: float = 0.0
    status: str = "running"
    programs: History = field(default_factory=lambda: History(WINDOW))
    steps: History = field(default_factory=lambda: History(WINDOW))
    features: FeatureSet = field(default_factory=FeatureSet)  # as hashes (seen.py)
    reached: History = field(default_factory=lambda: History(GROWTH))  # len(features)
    buckets: dict[int, BucketSeen] = field(default_factory=dict)
    events: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def new(cls, workers: int, kernel: str, budget: float) -> LiveState:
        return cls(kernel, budget, {i: WorkerView(i) for i in range(workers)})

    def tick(self, at: float) -> None:
        self.now = max(self.now, at)

    def note(self, text: str, at: float | None = None) -> None:
        """An event line (run.py's `say`), at `at` or the latest time known."""
        if at is not None:
            self.tick(at)
        self.events.append((self.now, text))

    def message(self, at: float, worker: int, msg: dict[str, object]) -> None:
        """What `watch` is given: a worker's message, or the campaign's about a worker."""
        self.tick(at)
        w = self.workers.setdefault(worker, WorkerView(worker))
        if "started" in msg:
            w.state, w.pid = "starting", int(str(msg["started"]))
            w.starts += 1
        if "ended" in msg:
            if msg.get("restarting"):
                w.state = "restarting"  # after a death, or its size (--worker-rss)
            else:
                w.state = "done" if int(str(msg["ended"])) == 0 else "dead"
        if "programs" in msg:
            programs, steps = int(str(msg["programs"])), int(str(msg.get("steps", 0)))
            w.state = "running"
            w.programs.add(at, programs)
            w.steps += steps
            self.programs.add(at, programs)
            self.steps.add(at, steps)
            new = msg.get("features")
            if isinstance(new, list) and new:
                self.features.update(str(f) for f in new)
                if len(self.features) != self.reached.value:
                    self.reached.set(at, len(self.features))
        if "bucket" in msg:
            self._bucket(at, int(str(msg["bucket"])), str(msg.get("title", "")),
                         bool(msg.get("new")))

    def _bucket(self, at: float, bid: int, title: str, new: bool) -> None:
        seen = self.buckets.get(bid)
        if seen is not None:
            seen.hits += 1
            seen.new = seen.new or new
            return
        self.buckets[bid] = BucketSeen(bid, title, new, at)
        what = "new bucket" if new else "known bucket"
        self.events.append((at, f"{what} #{bid} at {at:.0f} s: {title}"))

    def finish(self, status: str, at: float) -> None:
        """The campaign ended: workers still running were stopped by it."""
        self.tick(at)
        self.status = status
        for w in self.workers.values():
            if w.state in ("starting", "running", "restarting"):
                w.state = "stopped"

    # ------------------------------------------------------------------ figures

    def rate(self) -> float:
        """Programs per second over the last WINDOW seconds."""
        return _rate(self.programs, self.now)

    def overall(self) -> float:
        return self.programs.value / self.now if self.now > 0 else 0.0

    def steps_rate(self) -> float:
        return _rate(self.steps, self.now)

    def steps_overall(self) -> float:
        return self.steps.value / self.now if self.now > 0 else 0.0

    def worker_rate(self, w: WorkerView) -> float:
        return _rate(w.programs, self.now)

    def worker_overall(self, w: WorkerView) -> float:
        return w.programs.value / self.now if self.now > 0 else 0.0

    def gained(self) -> int:
        """Features reached over the last GROWTH seconds."""
        return self.reached.since(self.now, GROWTH)

    def judged(self) -> bool:
        """Whether rates are judged now: settled, and not winding down at the end."""
        return self.status == "running" and SETTLED <= self.now < self.budget

    def slow(self) -> bool:
        """The campaign's rate now is well under its overall one (a stall)."""
        return self.judged() and self.rate() < SLOW * self.overall()

    def slow_workers(self) -> list[int]:
        """Running workers whose rate now is well under their own overall one."""
        return [w.index for w in self.workers.values()
                if w.state == "running" and self.judged()
                and self.worker_rate(w) < SLOW * self.worker_overall(w)]

    def new_buckets(self) -> int:
        return sum(1 for b in self.buckets.values() if b.new)

    def alive(self) -> int:
        return sum(1 for w in self.workers.values() if w.state in ("starting", "running"))


# ---------------------------------------------------------------------- plain


def _per_s(value: float) -> str:
    return f"{value:,.1f}/s" if 0 < value < 10 else f"{value:,.0f}/s"


def plain_line(s: LiveState) -> str:
    """The progress line printed every few seconds without a terminal."""
    line = (f"[{s.now:6.0f}s] {s.programs.value:>8,} programs "
            f"({_per_s(s.rate())} last {WINDOW:g} s, {_per_s(s.overall())} overall)  "
            f"{s.steps.value:>9,} steps ({_per_s(s.steps_rate())}, {_per_s(s.steps_overall())})  "
            f"{len(s.features):>5,} features (+{s.gained():,} in {GROWTH:g} s)  "
            f"{len(s.buckets)} buckets ({s.new_buckets()} new)  "
            f"workers {s.alive()}/{len(s.workers)}")
    slow = s.slow_workers()
    if s.slow() or slow:
        who = f": worker{'s' if len(slow) > 1 else ''} {', '.join(map(str, slow))}" if slow else ""
        line += f"  SLOW{who}"
    return line


# ---------------------------------------------------------------------- live

_STATE_STYLE = {"running": "green", "starting": "cyan", "restarting": "yellow",
                "dead": "bold red", "done": "dim", "stopped": "dim"}


def _rate_text(now: float, overall: float, settled: bool) -> Text:
    style = "bold red" if settled and now < SLOW * overall else ""
    return Text(_per_s(now), style=style)


def render(s: LiveState) -> RenderableType:
    """The live view of the campaign."""
    cid = "?" if s.campaign is None else str(s.campaign)
    head = Text.assemble(
        ("campaign ", "bold"), (cid, "bold"), f"  kernel {s.kernel}  ",
        (f"{s.now:,.0f} s", "bold"), f" of {s.budget:,.0f} s  ",
        (s.status, "green" if s.status == "running" else "yellow"))

    workers = Table(box=None, pad_edge=False, header_style="bold", show_footer=True,
                    footer_style="bold")
    settled = s.judged()
    workers.add_column("worker", "total", justify="right")
    workers.add_column("state", f"{s.alive()}/{len(s.workers)} alive")
    workers.add_column(f"programs/s (last {WINDOW:g} s)", _rate_text(s.rate(), s.overall(),
                                                                  settled), justify="right")
    workers.add_column("programs/s (overall)", _per_s(s.overall()), justify="right")
    workers.add_column("programs", f"{s.programs.value:,}", justify="right")
    workers.add_column("steps", f"{s.steps.value:,}", justify="right")
    workers.add_column("starts", justify="right")
    for w in sorted(s.workers.values(), key=lambda w: w.index):
        workers.add_row(str(w.index), Text(w.state, style=_STATE_STYLE.get(w.state, "")),
                        _rate_text(s.worker_rate(w), s.worker_overall(w),
                                   settled and w.state == "running"),
                        _per_s(s.worker_overall(w)), f"{w.programs.value:,}", f"{w.steps:,}",
                        str(w.starts))

    parts: list[RenderableType] = [head, Text(), workers, Text()]
    if s.slow():
        parts.append(Text(f"SLOW: {_per_s(s.rate())} over the last {WINDOW:g} s against "
                          f"{_per_s(s.overall())} overall", style="bold red"))
    parts.append(Text(f"semantic features: {len(s.features):,} "
                      f"(+{s.gained():,} in the last {GROWTH:g} s)"))
    parts.append(Text(f"buckets: {len(s.buckets)} ({s.new_buckets()} new)"))
    newest = sorted(s.buckets.values(), key=lambda b: (b.at, b.id), reverse=True)[:NEWEST]
    if newest:
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right")
        table.add_column(width=3)
        table.add_column(justify="right")
        table.add_column(justify="right")
        table.add_column(no_wrap=True, overflow="ellipsis")
        for b in newest:
            table.add_row(f"  #{b.id}", Text("new", style="bold magenta") if b.new else "",
                          f"{b.at:,.0f} s", f"x{b.hits}", b.title)
        parts.append(table)
    if s.events:
        parts += [Text(), Text("events:", style="bold")]
        events = Table.grid(padding=(0, 1))
        events.add_column(justify="right")
        events.add_column(no_wrap=True, overflow="ellipsis")
        for at, text in s.events[-EVENTS:]:
            events.add_row(f"  {at:,.0f} s", text)
        parts.append(events)
    return Group(*parts)
