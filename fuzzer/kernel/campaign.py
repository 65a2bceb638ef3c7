"""A campaign worker for a guest kernel: `python -m fuzzer.kernel.campaign`.

campaign/run.py starts this instead of campaign/worker.py when the campaign's
kernel is `uml:PATH`. It takes the worker's arguments (plus --kernel,
--guest-mem and --features), boots a guest, runs the worker inside it with a
store that is this process's (proxy.py), and prints the worker's progress
lines on stdout as the worker would. So the host owns the database: every
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

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Literal

from fuzzer.campaign.worker import add_campaign_arguments
from fuzzer.kernel.channel import ChannelClosed, ChannelTimeout
from fuzzer.kernel.console import KIND
from fuzzer.kernel.proxy import serve
from fuzzer.kernel.spec import KernelError, parse_kernel
from fuzzer.kernel.uml import Guest
from fuzzer.oracle import Divergence, DivergenceKind
from fuzzer.prog import Program, ProgramError, parse
from fuzzer.store import SampleContext, Store, StoreError, open_store

# Seconds without a message, on top of the program budget, that make a hang (the
# environment variable is for tests, which cannot wait a minute).
SILENCE = float(os.environ.get("MMFUZZ_GUEST_SILENCE", "60"))
Outcome = Literal["done", "restart"]


def _parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(prog="mmfuzz-guest-worker")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--guest-mem", type=int, default=512)
    ap.add_argument("--features", default="{}")
    add_campaign_arguments(ap)
    return ap.parse_known_args(argv)  # the rest goes to the guest's worker as it is


class _Host:
    """The host's half of one campaign worker: boots guests until the time or runs are used."""

    def __init__(self, args: argparse.Namespace, rest: list[str], store: Store) -> None:
        self.args, self.rest, self.store = args, rest, store
        self.kernel = parse_kernel(args.kernel, args.guest_mem)
        self.features: dict[str, object] = json.loads(args.features)
        self.deadline = time.monotonic() + args.time
        self.started = time.monotonic()
        self.programs = 0
        self.boots = 0

    def run(self) -> None:
        while True:
            left = self.deadline - time.monotonic()
            if left < 1 or 0 < self.args.runs <= self.programs:
                return
            if self._guest(left) == "done":
                return
            self.boots += 1

    def _argv(self, left: float) -> list[str]:
        a = self.args
        argv = [*self.rest, "--db", "guest:", "--campaign", str(a.campaign),
                # a restarted guest must not replay the inputs that brought the last one down
                "--seed", str(a.seed + 1_000_003 * self.boots), "--time", f"{left:.1f}",
                "--runs", str(max(0, a.runs - self.programs) if a.runs else 0),
                "--budget", str(a.budget)]  # the guest keeps its corpus in its own scratch
        if a.seeds and self.boots == 0:
            argv += ["--seeds", str(Path(a.seeds).resolve())]
        for spec in a.inject:
            argv += ["--inject", spec]
        if a.stop_on_first:
            argv.append("--stop-on-first")
        return argv

    def _guest(self, left: float) -> Outcome:
        with Guest(self.kernel) as guest:
            assert guest.ready is not None
            release = guest.ready.release
            guest.send({"mode": "worker", "argv": self._argv(left)})
            running: str | None = None  # the program the guest announced last
            while True:
                try:
                    msg = guest.recv(self.args.budget + SILENCE)
                except ChannelTimeout:
                    self._finding(DivergenceKind.HANG,
                                  "hang: the guest kernel stopped answering", running, release,
                                  f"no message from the guest for "
                                  f"{self.args.budget + SILENCE:g} s; console:\n"
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
            SampleContext(self.args.campaign, program.text(), program.hash, release,
                          tuple(self.args.inject), self.features))
        _print({"bucket": bucket, "title": title, "new": new})
        if self.args.stop_on_first:
            _print({"first": {"title": title, "seconds": time.monotonic() - self.started,
                              "programs": self.programs, "calls": len(program)}})
            self.deadline = 0.0  # a benchmark run ends at its first finding

    def _relay(self, message: dict[str, object]) -> None:
        self.programs += int(str(message.get("programs", 0)))
        reduced = message.get("reduced")
        if reduced is not None and self.args.crashes:
            from fuzzer.reduce.export import write_bucket_folder

            folder = write_bucket_folder(Path(self.args.crashes),
                                         self.store.bucket(int(str(reduced))))
            message = {**message, "folder": str(folder)}
        _print(message)


def _print(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def main(argv: list[str]) -> None:
    args, rest = _parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # the guest (UML's processes) inherit it
    try:
        _Host(args, rest, open_store(args.db)).run()
    except (KernelError, StoreError) as e:
        print(f"mmfuzz-guest-worker: {e}", file=sys.stderr)  # the parent shows this line
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
