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

Time is the campaign's (run.py): this process ends at the deadline in its Job.
Each guest is sent the seconds left once it is up, so a boot is not counted
twice. Once the guest's worker has sent its final progress, its guest is
stopped at once (an exit and a power-off take seconds on a loaded machine); a
guest whose worker is still running GRACE seconds after the deadline is
stopped too, which ends this worker as its time would.

A guest's worker that fails for a reason of its own (an exception, not a kernel
fault) sends its error line and the tail of its output (guest.py): this worker
then fails with `worker I in uml:PATH failed: <that line>` as the last line of
its log (the line the campaign shows), after that output and the guest's
console tail.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import replace
from typing import Literal

from fuzzer.campaign.channel import Emit, emitter
from fuzzer.campaign.failure import error_line, tail
from fuzzer.campaign.options import GUEST_DB, Job
from fuzzer.kernel.channel import ChannelClosed, ChannelTimeout
from fuzzer.kernel.console import KIND
from fuzzer.kernel.messages import Halt, Worker, request_to_json
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
# Seconds a guest's worker may run past the deadline before its guest is stopped: a
# program, its last store calls, on a loaded machine.
GRACE = 10.0
Outcome = Literal["done", "restart"]


class GuestWorkerFailed(KernelError):
    """The guest's worker failed for a reason of its own; what it and the console said."""

    def __init__(self, message: str, output: str, console: str) -> None:
        super().__init__(message)
        self.output, self.console = output, console


class _Host:
    """The host's half of one campaign worker: boots guests until the time or runs are used."""

    def __init__(self, job: Job, store: Store, emit: Emit) -> None:
        self.job, self.opts, self.store, self.emit = job, job.options, store, emit
        self.kernel = parse_kernel(self.opts.kernel, self.opts.guest_mem)
        self.started = time.monotonic()
        self.deadline = (job.deadline if job.deadline is not None
                         else self.started + self.opts.time)
        self.programs = self.steps = 0
        self.boots = 0

    def run(self) -> None:
        while True:
            left = self.deadline - time.monotonic()
            if left < 1 or 0 < self.opts.runs <= self.programs:
                return
            if self._guest() == "done":
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
            worker_rss=0,  # the guest's memory is the guest's: its worker is not recycled
            crashes=None)  # written here, as the guest's buckets are reduced (_relay)
        base = self.job.totals  # the guest's progress points go on from this worker's totals
        return Job(mine, self.job.campaign, None, self.job.features, worker=self.job.worker,
                   totals=(base[0] + self.programs, base[1] + self.steps))

    def _guest(self) -> Outcome:
        with Guest(self.kernel) as guest:
            assert guest.ready is not None
            release = guest.ready.release
            left = self.deadline - time.monotonic()  # its boot is not its worker's time
            if left < 1:
                guest.send(request_to_json(Halt()))
                return "done"
            guest.send(request_to_json(Worker(self._job(left).to_json())))
            running: str | None = None  # the program the guest announced last
            error: dict[str, object] = {}  # what its worker said, had it failed
            while True:
                silence = self.opts.budget + SILENCE
                over = self.deadline + GRACE - time.monotonic()
                try:
                    msg = guest.recv(max(0.0, min(silence, over)))
                except ChannelTimeout:
                    if time.monotonic() >= self.deadline + GRACE:
                        return self._overtime(guest)
                    self._finding(DivergenceKind.HANG,
                                  "hang: the guest kernel stopped answering", running, release,
                                  f"no message from the guest for "
                                  f"{self.opts.budget + SILENCE:g} s; console:\n"
                                  + _tail(guest.console.text() if guest.console else ""))
                    return "restart"
                except ChannelClosed:
                    return self._died(guest, running, release, error)
                if "store" in msg:
                    guest.send(serve(self.store, msg))
                elif "program" in msg:
                    running = str(msg["program"])
                elif "worker" in msg and isinstance(msg["worker"], dict):
                    self._relay(msg["worker"])
                    if msg["worker"].get("final"):  # all it had to say is said and stored
                        guest.halt(0)  # no need to wait for its exit and power-off
                        return "done"
                elif "error" in msg:
                    error = msg
                elif "exit" in msg:
                    if msg["exit"] == 0 and not error:
                        return "done"
                    return self._died(guest, running, release, error)

    def _died(self, guest: Guest, running: str | None, release: str,
              error: dict[str, object]) -> Outcome:
        """The guest ended without its worker ending well: a kernel fault is a finding
        (and a new guest); anything else, the worker's failure."""
        crash = guest.crash()
        if crash is not None:
            self._finding(KIND, crash.title, running, release, crash.log)
            return "restart"
        console = guest.console.text() if guest.console else ""
        if error:
            why = str(error["error"])
        else:  # it sent nothing: what init or Python printed last (not the kernel)
            why = error_line("\n".join(ln for ln in console.splitlines()
                                       if not _KERNEL_LINE.match(ln)))
            why = why or f"the guest ended: {guest.last_console_line()}"
        raise GuestWorkerFailed(f"worker {self.job.worker} in {self.kernel} failed: {why}",
                                str(error.get("output", "")), console)

    def _overtime(self, guest: Guest) -> Outcome:
        """The guest's worker outlived the deadline: its guest is stopped, its time is over."""
        guest.halt(0)
        self.emit({"warning": f"worker {self.job.worker}: the guest's worker was still "
                              f"running {GRACE:g} s after the campaign's time: stopped"})
        return "done"

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


_KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\]")  # printk.time=1: the kernel's own lines


def main(argv: list[str]) -> None:
    text, fd = argv
    job = Job.from_json(text)
    if job.cpu is not None:
        os.sched_setaffinity(0, {job.cpu})  # the guest (UML's processes) inherit it
    try:
        _Host(job, open_store(job.options.db), emitter(int(fd))).run()
    except GuestWorkerFailed as e:
        # Kept in the campaign's log; the last line is the one the campaign shows.
        if e.output:
            print(f"the guest's worker's last output:\n{e.output}", file=sys.stderr)
        print(f"the guest's console, its last lines:\n{tail(e.console)}", file=sys.stderr)
        print(f"mmfuzz-guest-worker: {e}", file=sys.stderr)
        sys.exit(1)
    except (KernelError, StoreError) as e:
        print(f"mmfuzz-guest-worker: {e}", file=sys.stderr)  # the parent shows this line
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
