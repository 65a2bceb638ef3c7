"""Recorder: checks programs and stores what diverges; counts programs, steps, operations.

The one place a campaign turns a Report into stored buckets and samples, used
by every worker (and by anything else that fuzzes into the database). Each
sample carries the kernel release and probed features it was seen on. Every
checked step is counted by call, flags and outcome (ops.py) in memory; the
worker flushes those counts (OpCount rows) with its progress, through plain calls
of its store (a WorkerStore, store/ports.py: a Store, or a guest's StoreProxy),
or through a Spool that keeps them aside while the database server is away (spool.py).
A campaign worker also asks for each program's semantic features (`coverage`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from fuzzer.campaign.ops import OpCounter
from fuzzer.campaign.spool import Spool
from fuzzer.check import Report, check
from fuzzer.model import Unsupported
from fuzzer.observe.probe import probe
from fuzzer.oracle import Divergence, by_primary
from fuzzer.prog import Program
from fuzzer.store import OpCount, SampleContext
from fuzzer.store.ports import WorkerStore
from fuzzer.trace import Supervisor

BucketHook = Callable[[int, str, bool], None]  # (bucket id, title, new?)
HANG_CONFIRM_FACTOR = 4


class Recorder:
    def __init__(
        self,
        store: WorkerStore,
        campaign_id: int | None,
        supervisor: Supervisor,
        on_bucket: BucketHook | None = None,
        plain: Supervisor | None = None,
        coverage: bool = False,
        spool: Spool | None = None,
    ) -> None:
        """`plain`, a supervisor without the injections of `supervisor`, tells the
        divergences the injections cause from those the program shows without them.
        With `coverage`, each check() leaves the program's semantic features in
        `covered` (fuzzer/check/coverage.py). With a spool, what the store cannot take
        while its server is away waits in the spool (spool.py), and its buckets are
        told when it is written."""
        self.store, self.campaign_id, self.supervisor = store, campaign_id, supervisor
        self.spool = spool
        if spool is not None:
            spool.on_replay = self._replayed
        self.on_bucket, self.plain = on_bucket, plain
        self.kernel, self.build = os.uname().release, os.uname().version
        self.features = probe().as_dict()  # what the model was told about this kernel
        injector = supervisor.injector
        # Findings on an emulated buggy kernel are told apart from real ones.
        self.injections = tuple(i.name for i in injector.injections) if injector else ()
        self.programs = self.steps = self.unsupported = 0
        self.new_buckets: list[tuple[int, Divergence]] = []  # opened by the last check()
        self.injected: list[Divergence] = []  # of the last check(), the injections' own
        self._reported = (0, 0, 0)
        self._ops = OpCounter()
        self.coverage = coverage
        self.covered: frozenset[str] = frozenset()  # of the last check(), with coverage

    def check(self, program: Program) -> Report:
        self.new_buckets, self.injected, self.covered = [], [], frozenset()
        try:
            report = check(self.supervisor, program, ranges=self.coverage)
        except Unsupported:
            # A call the model does not cover slipped through the generator: not a
            # finding; counted so a generator that does this often is noticed.
            self.unsupported += 1
            return Report(program)
        if self.coverage:
            self.covered = report.features()
        if any(d.kind == "hang" for d in report.divergences):
            report = self._confirm_hang(program, report)
        self.programs += 1
        self.steps += len(report.steps)
        add = self._ops.add
        for st in report.steps:
            add(st.call, st.ret, st.signal, st.folio)
        if report.divergences:
            seen = SampleContext(self.campaign_id, program.text(), program.hash, self.kernel,
                                 self.injections, self.features, self.build)
            plain = self._without_injections(program) if self.injections else frozenset()
            # One sample per diverging step, filed under its primary divergence.
            for d, others in by_primary(report.divergences):
                here = replace(seen, symptoms=tuple(o.title for o in others))
                self._record(d, self._attribute(d, here, plain))
        return report

    def _record(self, d: Divergence, seen: SampleContext) -> None:
        got = self.store.record(d, seen) if self.spool is None else self.spool.record(d, seen)
        if got is None:
            return  # spooled: its bucket is told when it is written (_replayed)
        bucket, new = got
        if new:
            self.new_buckets.append((bucket, d))
        if self.on_bucket is not None:
            self.on_bucket(bucket, d.title, new)

    def _replayed(self, name: str, args: list[object], ret: object) -> None:
        """A spooled call was written: a spooled divergence's bucket is told (it is not
        minimized: its program is long gone from the fuzzer's hands)."""
        if (name == "record" and self.on_bucket is not None and isinstance(ret, tuple)
                and args and isinstance(args[0], Divergence)):
            bucket, new = ret
            self.on_bucket(int(bucket), args[0].title, bool(new))

    def write_progress(self, campaign_id: int, programs: int, steps: int) -> None:
        """Progress, with the operation counts of the same steps (take_ops), to the
        store (through the spool, if any)."""
        ops = self.take_ops()
        if self.spool is None:
            self.store.add_progress(campaign_id, programs=programs, steps=steps, ops=ops)
        else:
            self.spool.add_progress(campaign_id, programs=programs, steps=steps, ops=ops)

    @property
    def store_away(self) -> bool:
        """Whether the database server is known to be away: writes are being spooled."""
        return self.spool is not None and self.spool.pending > 0

    def write_point(self, campaign_id: int, worker: int,
                    base: tuple[int, int] = (0, 0)) -> None:
        """A progress point: this worker's running totals (from `base`, its totals before
        this process), stamped by the store. Never spooled: a point written when the
        server is back would carry the wrong time."""
        if not self.store_away:
            self.store.add_point(campaign_id, worker=worker, programs=base[0] + self.programs,
                                 steps=base[1] + self.steps)

    def _without_injections(self, program: Program) -> frozenset[str]:
        """The titles the program shows without the injections (one run for all of a
        report's divergences)."""
        if self.plain is None:
            return frozenset()
        try:
            return frozenset(d.title for d in check(self.plain, program).divergences)
        except Unsupported:
            return frozenset()  # as shows(): a program the model cannot predict shows nothing

    def _attribute(self, d: Divergence, seen: SampleContext,
                   plain: frozenset[str]) -> SampleContext:
        """A divergence found under injection is the injection's only if the program does
        not show it without them (`plain`); otherwise it is the kernel's (or the
        model's), and its sample is stored as seen without injection."""
        if not self.injections:
            return seen
        if d.title in plain:
            return replace(seen, injections=())
        self.injected.append(d)
        return seen

    def _confirm_hang(self, program: Program, report: Report) -> Report:
        """A run that ran out of time counts as a hang only if it runs out of a budget
        four times as long as well: on a loaded machine a slow run is not a finding."""
        budget = self.supervisor.budget
        self.supervisor.budget = budget * HANG_CONFIRM_FACTOR
        try:
            again = check(self.supervisor, program)
        except Unsupported:
            return report
        finally:
            self.supervisor.budget = budget
        return again

    def take_progress(self) -> tuple[int, int, int]:
        """Programs, steps and programs the model refused, since the last call."""
        now = (self.programs, self.steps, self.unsupported)
        delta = tuple(a - b for a, b in zip(now, self._reported, strict=True))
        self._reported = now
        return delta[0], delta[1], delta[2]

    def take_ops(self) -> list[OpCount]:
        """The counts of the steps checked since the last call, for
        Store.add_progress(ops=...) with the progress of the same steps."""
        return self._ops.take()
