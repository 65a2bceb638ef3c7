"""A campaign worker for a guest kernel: `python -m fuzzer.campaign.guest_worker JOB FD`.

campaign/run.py starts this instead of campaign/worker.py when the campaign's
kernel is `uml:PATH`. It takes the worker's Job (options.py, with the kernel's
probed features), boots a guest, runs the worker inside it with a
store that is this process's (proxy.py), and sends the worker's progress
on its channel (FD, channel.py) as the worker would. So the host owns the database: every
divergence, sample, counter and minimized program the guest finds is written
here, and so are the crashes/ folders.

A fault of the kernel under test is a finding, not an error: when the guest
panics (an oops or warning panics it: oops=panic, panic_on_warn=1) the program
it was running is stored as a `kernel-crash` with the console log as the
sample's observed text; when it sends nothing for longer than any program
takes, as a `hang`. Either way the guest is killed, a new one boots and the
campaign goes on with the time and runs that are left, on another seed.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from typing import Literal

from fuzzer.campaign.channel import Emit, emitter
from fuzzer.campaign.options import GUEST_DB, Job
from fuzzer.kernel.channel import ChannelClosed, ChannelTimeout
from fuzzer.kernel.console import KIND
from fuzzer.kernel.proxy import serve
from fuzzer.kernel.spec import KernelError, parse_kernel
from fuzzer.kernel.uml import Guest
from fuzzer.oracle import Divergence, DivergenceKind
from fuzzer.prog import Program, ProgramError, parse
from fuzzer.reduce.export import write_bucket_folder
from fuzzer.store import SampleContext, Store, StoreError, open_store

# Seconds without a message, on top of the program budget, that make a hang (the
# environment variable is for tests, which cannot wait a minute).
SILENCE = float(os.environ.get("MMFUZZ_GUEST_SILENCE", "60"))
Outcome = Literal["done", "restart"]


class _Host:
    """The host's half of one campaign worker: boots guests until the time or runs are used."""

    def __init__(self, job: Job, store: Store, emit: Emit) -> None:
        self.job, self.opts, self.store, self.emit = job, job.options, store, emit
        self.kernel = parse_kernel(self.opts.kernel, self.opts.guest_mem)
        self.deadline = time.monotonic() + self.opts.time
        self.started = time.monotonic()
        self.programs = self.steps = 0
        self.boots = 0

    def run(self) -> None:
        while True:
            left = self.deadline - time.monotonic()
            if left < 1 or 0 < self.opts.runs <= self.programs:
                return
            if self._guest(left) == "done":
                return
            self.boots += 1

    def _job(self, left: float) -> Job:
        """The guest's worker's Job: what is left of this one's time and runs."""
        o = self.opts
        mine = replace(
            o, db=GUEST_DB,
            # a restarted guest must not replay the inputs that brought the last one down
            seed=o.seed + 1_000_003 * self.boots, time=round(left, 1),
            runs=max(0, o.runs - self.programs) if o.runs else 0,
            seeds=o.seeds.resolve() if o.seeds is not None and self.boots == 0 else None,
            corpus=None,  # the guest keeps its corpus in its own scratch
            crashes=None)  # written here, as the guest's buckets are reduced (_relay)
        base = self.job.totals  # the guest's progress points go on from this worker's totals
        return Job(mine, self.job.campaign, None, self.job.features, worker=self.job.worker,
                   totals=(base[0] + self.programs, base[1] + self.steps))

    def _guest(self, left: float) -> Outcome:
        with Guest(self.kernel) as guest:
            assert guest.ready is not None
            release = guest.ready.release
            guest.send({"mode": "worker", "job": self._job(left).to_json()})
            running: str | None = None  # the program the guest announced last
            while True:
                try:
                    msg = guest.recv(self.opts.budget + SILENCE)
                except ChannelTimeout:
                    self._finding(DivergenceKind.HANG,
                                  "hang: the guest kernel stopped answering", running, release,
                                  f"no message from the guest for "
                                  f"{self.opts.budget + SILENCE:g} s; console:\n"
                                  + _tail(guest.console.text() if guest.console else ""))
                    return "restart"
                except ChannelClosed:
                    return self._died(guest, running, release)
                if "store" in msg:
                    guest.send(serve(self.store, msg))
                elif "program" in msg:
                    running = str(msg["program"])
                elif "worker" in msg and isinstance(msg["worker"], dict):
                    self._relay(msg["worker"])
                elif "exit" in msg:
                    if msg["exit"] == 0:
                        return "done"
                    return self._died(guest, running, release)

    def _died(self, guest: Guest, running: str | None, release: str) -> Outcome:
        crash = guest.crash()
        if crash is None:
            raise KernelError(f"the guest's worker failed: {guest.last_console_line()}")
        self._finding(KIND, crash.title, running, release, crash.log)
        return "restart"

    def _finding(self, kind: DivergenceKind, title: str, running: str | None, release: str,
                 observed: str) -> None:
        try:
            program = parse(running, "<guest>") if running else Program(())
        except ProgramError:
            program = Program(())
        bucket, new = self.store.record(
            Divergence(kind, title, max(0, len(program) - 1),
                       "the kernel survives the program and keeps answering", observed),
            SampleContext(self.job.campaign, program.text(), program.hash, release,
                          tuple(self.opts.injections), self.job.features))
        self.emit({"bucket": bucket, "title": title, "new": new})
        if self.opts.stop_on_first:
            self.emit({"first": {"title": title, "seconds": time.monotonic() - self.started,
                              "programs": self.programs, "calls": len(program)}})
            self.deadline = 0.0  # a benchmark run ends at its first finding

    def _relay(self, message: dict[str, object]) -> None:
        self.programs += int(str(message.get("programs", 0)))
        self.steps += int(str(message.get("steps", 0)))
        reduced = message.get("reduced")
        if reduced is not None and self.opts.crashes is not None:
            folder = write_bucket_folder(self.opts.crashes,
                                         self.store.bucket(int(str(reduced))))
            message = {**message, "folder": str(folder)}
        self.emit(message)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def main(argv: list[str]) -> None:
    text, fd = argv
    job = Job.from_json(text)
    if job.cpu is not None:
        os.sched_setaffinity(0, {job.cpu})  # the guest (UML's processes) inherit it
    try:
        _Host(job, open_store(job.options.db), emitter(int(fd))).run()
    except (KernelError, StoreError) as e:
        print(f"mmfuzz-guest-worker: {e}", file=sys.stderr)  # the parent shows this line
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
