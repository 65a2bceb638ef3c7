"""Recorder: checks programs and stores what diverges; counts programs and steps.

The one place a campaign turns a Report into stored buckets and samples, used
by every worker (and by anything else that fuzzes into the database).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from fuzzer.model import Unsupported
from fuzzer.oracle import Divergence
from fuzzer.prog import Program
from fuzzer.store import Store
from fuzzer.trace import Report, Supervisor, check

BucketHook = Callable[[int, str, bool], None]  # (bucket id, title, new?)


class Recorder:
    def __init__(
        self,
        store: Store,
        campaign_id: int | None,
        supervisor: Supervisor,
        on_bucket: BucketHook | None = None,
    ) -> None:
        self.store, self.campaign_id, self.supervisor = store, campaign_id, supervisor
        self.on_bucket = on_bucket
        self.kernel = os.uname().release
        injector = supervisor.injector
        # Findings on an emulated buggy kernel are told apart from real ones.
        self.injections = ",".join(i.name for i in injector.injections) if injector else ""
        self.programs = self.steps = self.unsupported = 0
        self.new_buckets: list[tuple[int, Divergence]] = []  # opened by the last check()
        self._reported = (0, 0, 0)

    def check(self, program: Program) -> Report:
        self.new_buckets = []
        try:
            report = check(self.supervisor, program)
        except Unsupported:
            # A call the model does not cover slipped through the generator: not a
            # finding; counted so a generator that does this often is noticed.
            self.unsupported += 1
            return Report(program)
        self.programs += 1
        self.steps += len(report.steps)
        if report.divergences:
            text, digest = program.text(), program.hash
            for d in report.divergences:
                bucket, new = self.store.record(
                    campaign_id=self.campaign_id, program_text=text, program_hash=digest,
                    kind=d.kind, title=d.title, step=d.step, expected=d.expected,
                    observed=d.observed, kernel=self.kernel, injections=self.injections)
                if new:
                    self.new_buckets.append((bucket, d))
                if self.on_bucket is not None:
                    self.on_bucket(bucket, d.title, new)
        return report

    def take_progress(self) -> tuple[int, int, int]:
        """Programs, steps and programs the model refused, since the last call."""
        now = (self.programs, self.steps, self.unsupported)
        delta = tuple(a - b for a, b in zip(now, self._reported, strict=True))
        self._reported = now
        return delta[0], delta[1], delta[2]
