"""A campaign: start workers, gather their progress, keep them going, finish the campaign row.

Each worker is a separate process (`python -m fuzzer.campaign.worker`, or
`fuzzer.campaign.guest_worker` for a guest kernel) given its Job (options.py), pinned
to its own CPU with its children, writing divergences straight into the
store. This parent reads their messages on a pipe of each worker's own
(channel.py; their output goes to logs in the campaign's scratch folder,
fleet.py), shows rates, restarts a worker that dies (with a back-off, giving
up on one that keeps dying), stamps the campaign's heartbeat every few
seconds, and on the end (time, runs, Ctrl-C or SIGTERM) stops the workers it
started, by pid.

Its time is wall-clock and this process owns it: it runs from the call, a
guest's boots and worker restarts included. Each worker is given the deadline
(a guest worker tells its guest the seconds left once the guest is up); one
still running LATE_GRACE seconds after it is stopped.

The campaign ends "done" (it ran its time), "interrupted" (Ctrl-C, SIGTERM) or
"failed" (a worker was given up, or an error here; `Progress.error` says
which). The scratch folder is removed, but kept on failure: its worker logs
say what went wrong.

A campaign that ended before its time (interrupted, failed) or was lost goes on
with `resume_campaign`: in its own row, with the options it stored (but for
MAY_CHANGE), for the time it has left; its counters, its workers' progress
points and its corpus go on from what is stored.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from fuzzer import native
from fuzzer.campaign import fleet
from fuzzer.campaign.cpus import Placement, parse_cpus, place
from fuzzer.campaign.fleet import Slot
from fuzzer.campaign.options import Job, Options
from fuzzer.campaign.seen import FeatureSet
from fuzzer.campaign.spool import SUFFIX as SPOOL_SUFFIX
from fuzzer.campaign.spool import drain_folder
from fuzzer.campaign.target import Target, target_of
from fuzzer.kernel import parse_kernel
from fuzzer.store import CampaignRow, Store, StoreError
from fuzzer.store.campaigns import HEARTBEAT_EVERY, last_seen, why_not_resumable
from fuzzer.store.identity import KernelId

# Seconds a worker may run past the campaign's time before it is stopped (more than a
# guest worker's own GRACE, after which it stops its guest).
LATE_GRACE = 20.0


class CampaignError(RuntimeError):
    """A worker failed for a reason of its own (not a kernel finding)."""


@dataclass
class Progress:
    campaign_id: int
    elapsed: float = 0.0
    programs: int = 0
    steps: int = 0
    buckets: dict[int, tuple[str, bool]] = field(default_factory=dict)  # id -> (title, new)
    hits: dict[int, int] = field(default_factory=dict)  # id -> samples in this campaign
    status: str = "running"
    first: dict[str, object] | None = None  # the first divergence, with stop_on_first
    warnings: list[str] = field(default_factory=list)
    unsupported: int = 0  # programs skipped because the model refused a call in them
    # semantic features reached (coverage.py), as hashes (seen.py): they grow all along
    features: FeatureSet = field(default_factory=FeatureSet)
    restarts: int = 0  # worker processes started again after they died
    recycled: int = 0  # worker processes started again after they passed --worker-rss
    planted: int = 0  # corpus programs the workers were given at their start
    error: str = ""  # why the campaign failed, one line
    kept: str = ""  # the scratch folder (worker logs), kept because the campaign failed

    @property
    def new_buckets(self) -> int:
        return sum(1 for _, new in self.buckets.values() if new)


Say = Callable[[str], None]
# Every message read from a worker, as (seconds since the campaign started, worker, message),
# and the campaign's own about its workers: {"started": pid}, {"ended": status,
# "restarting": whether it will be} (campaign/display.py keeps the live view from them).
Watch = Callable[[float, int, dict[str, object]], None]


@dataclass(frozen=True)
class Hooks:
    """What the caller hears of a running campaign: its progress every `every` seconds
    (`show`), a line for each event (`say`: a lost campaign found, a worker died or
    restarted), and each message as it comes (`watch`)."""

    show: Callable[[Progress], None]
    every: float = 2.0
    say: Say = lambda line: None
    watch: Watch = lambda at, worker, message: None


class _Stop(Exception):
    pass


def _on_term(signo: int, frame: FrameType | None) -> None:
    raise _Stop


def run_campaign(
    store: Store, opts: Options, show: Callable[[Progress], None], every: float = 2.0,
    say: Say = lambda line: None, watch: Watch = lambda at, worker, message: None,
) -> Progress:
    """Run a campaign; `show` is called with its progress every `every` seconds, `say`
    with a line for each event (a lost campaign found, a worker died or restarted),
    `watch` with each message as it comes."""
    start = time.monotonic()  # the campaign's time runs from here, a guest's boot included
    hooks = Hooks(show, every, say, watch)
    with _placed(opts) as placement:
        kernel, features = _kernel(opts)
        _report_lost(store, say)
        options = opts.as_json()
        options["features"] = features  # what the model was told about this kernel
        options["worker_cpus"] = placement.cpus  # where each worker ran
        cid = store.start_campaign(kernel=kernel.release, host=os.uname().nodename,
                                   options=options, build=kernel.build, binary=kernel.binary,
                                   kernel_name=kernel.name)
        campaign = _Campaign(store, opts, placement, cid, features, hooks, start)
        return campaign.run()


@contextmanager
def _placed(opts: Options) -> Iterator[Placement]:
    """The workers' CPUs, held while the campaign runs."""
    placement = place(opts.workers, parse_cpus(opts.cpus) if opts.cpus else ())
    try:
        yield placement
    finally:
        placement.close()  # the workers' copies of the locks are gone with them


def _report_lost(store: Store, say: Say) -> None:
    lost = store.lost_campaigns()
    if lost:
        say(f"note: {_lost_text(lost)} (`mmfuzz status` lists them)")


def _lost_text(lost: list[CampaignRow]) -> str:
    def one(c: CampaignRow) -> str:
        seen = c.heartbeat or c.started
        return f"campaign {c.id} on {c.host} (last heartbeat {seen:%Y-%m-%d %H:%M:%S} UTC)"
    more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
    return f"{one(lost[0])}{more} stopped without finishing: lost"


def _target(opts: Options) -> Target:
    """The campaign's kernel, named as its options say."""
    kernel = parse_kernel(opts.kernel, opts.guest_mem)
    return target_of(replace(kernel, name=opts.kernel_name) if opts.kernel_name else kernel)


def _kernel(opts: Options) -> tuple[KernelId, dict[str, object]]:
    """The build and probed features of the campaign's kernel (a guest boots once for them)."""
    return _target(opts).probe()


# What `--resume` may change: where and how hard this machine runs the campaign. The
# other options are what the campaign is; giving another value is refused.
MAY_CHANGE = ("db", "workers", "cpus", "budget", "guest_mem", "corpus", "crashes", "worker_rss")
MIN_LEFT = 1.0  # seconds: a campaign with less time left has nothing to resume


@dataclass(frozen=True)
class _Resume:
    """Where a resumed campaign's run starts from."""

    run: int  # its runs before this one
    before: float  # seconds it ran in them
    totals: dict[int, tuple[int, int]]  # worker -> (programs, steps) at its last point
    row: CampaignRow  # as it was


def resume_options(row: CampaignRow, changes: dict[str, object]) -> Options:
    """The options of campaign `row`'s next run: the stored ones, with the `changes`
    (Options fields) MAY_CHANGE allows; a CampaignError (one line) for a change of
    any other option, and for a campaign that cannot be resumed (why_not_resumable,
    no time left)."""
    stored = Options.stored(row.options)
    _refuse(row, stored, datetime.now(UTC))
    for name, value in changes.items():
        if name not in MAY_CHANGE and value != getattr(stored, name):
            flag = "--inject" if name == "injections" else f"--{name.replace('_', '-')}"
            raise CampaignError(
                f"{flag} {_shown(value)} conflicts with campaign {row.id}, which runs with "
                f"{_shown(getattr(stored, name))}: a resumed campaign keeps its options "
                f"(only --{', --'.join(n.replace('_', '-') for n in MAY_CHANGE)} may change); "
                "start a new campaign for others")
    kept = {k: v for k, v in changes.items() if k in MAY_CHANGE}
    return replace(stored, **kept)  # type: ignore[arg-type]


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(none)"
    return "(none)" if value is None else str(value)


def _left(row: CampaignRow, opts: Options) -> float:
    """Seconds of its time the campaign has left."""
    return opts.time - row.ran(last_seen(row))


def _refuse(row: CampaignRow, opts: Options, now: datetime) -> None:
    why = why_not_resumable(row, now)
    if why:
        raise CampaignError(why)
    left = _left(row, opts)
    if left < MIN_LEFT:
        raise CampaignError(f"campaign {row.id} has no time left: it ran "
                            f"{row.ran(last_seen(row)):.0f} s of its {opts.time:g} s")


def resume_campaign(
    store: Store, campaign_id: int, opts: Options, show: Callable[[Progress], None],
    every: float = 2.0, say: Say = lambda line: None,
    watch: Watch = lambda at, worker, message: None,
) -> Progress:
    """Continue campaign `campaign_id` with `opts` (resume_options) for the time it has
    left, in its own row, marked running again; as run_campaign otherwise."""
    start = time.monotonic()  # this run's time runs from here, a guest's boot included
    hooks = Hooks(show, every, say, watch)
    with _placed(opts) as placement:
        kernel, features = _kernel(opts)
        row = store.campaign(campaign_id)
        if not kernel.agrees(row.kernel_id):
            raise CampaignError(f"campaign {campaign_id} ran on kernel "
                                f"{row.kernel_id.describe()}, this one is {kernel.describe()}: "
                                "resume it there, or start a new campaign")
        row = store.resume_campaign(campaign_id, host=os.uname().nodename,
                                    check=lambda was: _refuse(was, opts, datetime.now(UTC)))
        _report_lost(store, say)  # others (this one is running again)
        left = _left(row, opts)
        resume = _Resume(len(row.resumed) + 1, row.ran(last_seen(row)),
                         store.worker_totals(campaign_id), row)
        mine = replace(opts, time=round(left, 1), seeds=None)  # the seeds ran in its first run
        features_seen = {f for _, _, fs in store.corpus_features([campaign_id]) for f in fs}
        campaign = _Campaign(store, mine, placement, campaign_id, features, hooks, start,
                             resume=resume)
        campaign.progress.features |= features_seen
        return campaign.run()


class _Campaign:
    """One campaign's workers, from their start to the campaign row's end."""

    def __init__(self, store: Store, opts: Options, placement: Placement, cid: int,
                 features: dict[str, object], hooks: Hooks, start: float,
                 resume: _Resume | None = None) -> None:
        self.store, self.opts, self.placement, self.cid = store, opts, placement, cid
        self.features, self.hooks, self.say, self.watch = features, hooks, hooks.say, hooks.watch
        self.scratch = Path(tempfile.mkdtemp(prefix=f"mmfuzz-campaign-{cid}-"))
        # In a guest kernel, a host process stands in for the worker and runs it in the guest.
        self.worker_module = _target(opts).worker_module
        self.progress = Progress(cid)
        self.slots = [Slot(i, self.scratch / f"worker-{i}.log") for i in range(opts.workers)]
        self.sel = selectors.DefaultSelector()
        self.last_beat = time.monotonic()
        self.start = start
        self.deadline = self.start + opts.time
        self.run_no, self.before = 0, 0.0  # a resumed campaign's earlier runs, and their time
        if resume is not None:
            self.run_no, self.before = resume.run, resume.before
            self.progress = Progress(cid, elapsed=resume.before, programs=resume.row.programs,
                                     steps=resume.row.steps)
            for slot in self.slots:
                slot.programs, slot.steps = resume.totals.get(slot.index, (0, 0))

    def run(self) -> Progress:
        progress = self.progress
        old = signal.signal(signal.SIGTERM, _on_term)
        try:
            for slot in self.slots:
                if not (self.opts.runs and slot.programs >= self.opts.runs):  # a resumed one's
                    self._launch(slot)
            self._loop(self.hooks.show, self.hooks.every)
            progress.status = "failed" if progress.error else "done"
        except (KeyboardInterrupt, _Stop):
            progress.status = "interrupted"
        finally:
            signal.signal(signal.SIGTERM, old)
            fleet.stop(self.slots)
            self._finish()
        return progress

    def _finish(self) -> None:
        progress = self.progress
        if progress.status == "running":  # an error on our side: say so, and keep the data
            progress.status = "failed"
        progress.elapsed = self.before + time.monotonic() - self.start
        # Store writes a worker spooled while the database server was away (spool.py).
        for folder in sorted(p for p in self.scratch.glob("worker-*") if p.is_dir()):
            progress.warnings += drain_folder(self.store, folder, self.store.patience)
        if progress.status == "failed" or any(self.scratch.rglob(f"*{SPOOL_SUFFIX}")):
            progress.kept = str(self.scratch)
        else:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.store.finish_campaign(self.cid, progress.status)

    def _loop(self, show: Callable[[Progress], None], every: float) -> None:
        last_show = time.monotonic()
        while not self.progress.error and any(
                s.running or s.restart_at is not None for s in self.slots):
            for key, _ in self.sel.select(timeout=0.5):
                self._read(key.data)
            now = time.monotonic()
            for slot in self.slots:
                if slot.restart_at is not None and now >= slot.restart_at:
                    self._restart(slot)
            self.progress.elapsed = self.before + now - self.start
            if now > self.deadline + LATE_GRACE:
                self._say_late(now)
                return
            if now - self.last_beat >= HEARTBEAT_EVERY:
                self._beat(now)
            if now - last_show >= every:
                last_show = now
                show(self.progress)

    def _read(self, slot: Slot) -> None:
        assert slot.fd is not None
        chunk = os.read(slot.fd, 65536)
        if not chunk:
            self.sel.unregister(slot.fd)
            status = fleet.reap(slot)
            self._ended(slot, status)
            self.watch(time.monotonic() - self.start, slot.index,
                       {"ended": status, "restarting": slot.restart_at is not None})
            return
        for message in fleet.messages(slot, chunk):
            if "recycle" in message:
                slot.recycle = int(str(message["recycle"]))
            slot.programs += int(str(message.get("programs", 0)))
            slot.steps += int(str(message.get("steps", 0)))
            _absorb(self.progress, message)
            self.watch(time.monotonic() - self.start, slot.index, message)

    def _launch(self, slot: Slot) -> None:
        opts, first = self.opts, slot.starts == 0
        artifacts = self.scratch / f"worker-{slot.index}"
        artifacts.mkdir(exist_ok=True)
        # Worker i fuzzes with seed+i; the seed programs are run once, by the first. A
        # restarted worker (or one of a resumed campaign's later run) takes another seed
        # (not the inputs that brought it down) and the campaign's time and runs that are
        # left. Every worker ends at the campaign's deadline (the seconds left as its time,
        # for a guest's worker to pass on).
        starts = slot.starts + 1000 * self.run_no
        mine = replace(opts, seed=opts.seed + slot.index + 1_000_003 * starts,
                       seeds=opts.seeds if slot.index == 0 and first else None,
                       time=max(0.0, round(self.deadline - time.monotonic(), 1)),
                       runs=max(1, opts.runs - slot.programs) if opts.runs else 0)
        job = Job(mine, self.cid, self.placement.cpus[slot.index], self.features,
                  worker=slot.index, scratch=str(artifacts), deadline=self.deadline,
                  totals=(slot.programs, slot.steps))  # its progress points go on from them
        module = self.worker_module
        env = {**os.environ, "TMPDIR": str(artifacts)}  # whatever else it writes: there too
        if opts.feedback != "semantic":  # Atheris instruments the interpreted model only
            env[native.PURE_ENV] = "1"
        # The CPU locks live while a worker does.
        fleet.start(slot, fleet.python_module(module, job.to_json()), env, self.placement.fds)
        assert slot.fd is not None and slot.proc is not None
        self.sel.register(slot.fd, selectors.EVENT_READ, slot)
        self.watch(time.monotonic() - self.start, slot.index, {"started": slot.proc.pid})

    def _ended(self, slot: Slot, status: int) -> None:
        """A worker's process ended: fine at status 0; otherwise it died, and is
        restarted after a back-off, or given up."""
        now = time.monotonic()
        if status == 0:
            rss, slot.recycle = slot.recycle, 0
            if rss and self.deadline - now > 1 and not (
                    self.opts.runs and slot.programs >= self.opts.runs):
                slot.restart_at, slot.recycling = now, True  # at once: it is not a death
                self.progress.recycled += 1
                self.say(f"worker {slot.index} recycled at {now - self.start:.0f} s: RSS "
                         f"{rss} MiB over --worker-rss {self.opts.worker_rss}, restarting "
                         "with the corpus from the database")
            return
        what = f"worker {slot.index} died ({fleet.how(status)}) at {now - self.start:.0f} s"
        error = fleet.last_error(slot.log_path) if status > 0 else ""
        because = f": {error}" if error else ""
        delay = fleet.died(slot, now)
        if delay is None:
            self.progress.error = (f"{what}, {len(slot.deaths)} times in "
                                   f"{fleet.RESTART_WINDOW:g} s: given up{because}")
        elif self.deadline - now < delay + 1 or (
                self.opts.runs and slot.programs >= self.opts.runs):
            self.say(f"{what}, not restarted: the campaign's time or runs are used{because}")
        else:
            slot.restart_at = now + delay
            self.say(f"{what}, restarting in {delay:g} s{because}")

    def _say_late(self, now: float) -> None:
        """The campaign's time is over and workers are still running (run() stops them)."""
        for slot in self.slots:
            if slot.running:
                self.say(f"worker {slot.index} still running {now - self.deadline:.0f} s "
                         f"after the campaign's time: stopped")

    def _restart(self, slot: Slot) -> None:
        recycled, slot.recycling = slot.recycling, False
        self._launch(slot)
        self.progress.restarts += not recycled
        assert slot.proc is not None
        self.say(f"worker {slot.index} restarted (pid {slot.proc.pid})")

    def _beat(self, now: float) -> None:
        self.last_beat = now
        try:
            self.store.heartbeat(self.cid, sum(1 for s in self.slots if s.running))
        except StoreError as e:  # a busy database: the next beat may get through
            self.progress.warnings.append(f"heartbeat not stored at "
                                          f"{datetime.now(UTC):%H:%M:%S}: {e}")


def _absorb(progress: Progress, msg: dict[str, object]) -> None:
    if "warning" in msg:
        progress.warnings.append(str(msg["warning"]))
    if "planted" in msg:
        progress.planted += int(str(msg["planted"]))
    first = msg.get("first")
    if isinstance(first, dict) and progress.first is None:
        progress.first = first
    if "programs" in msg:
        progress.programs += int(str(msg["programs"]))
        progress.steps += int(str(msg["steps"]))
        progress.unsupported += int(str(msg.get("unsupported", 0)))
        new = msg.get("features")
        if isinstance(new, list):
            progress.features.update(str(f) for f in new)
    if "bucket" in msg:
        bid = int(str(msg["bucket"]))
        title, new = str(msg["title"]), bool(msg["new"])
        known = progress.buckets.get(bid)
        progress.buckets[bid] = (title, new or (known is not None and known[1]))
        progress.hits[bid] = progress.hits.get(bid, 0) + 1
