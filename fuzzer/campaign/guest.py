"""The guest's side: `python -m fuzzer.campaign.guest`, started by fuzzer/kernel/init.sh.

It opens the channel, says it is ready (with the kernel release), takes one
request (a typed message, fuzzer/kernel/messages.py) and answers it:

  probe       the features of this kernel, as the model will be told them
  exec        check one program, its printed report sent back as text
  check       check programs, the titles of their divergences sent back
  repro       how many of N runs of a program show a bucket's title
  throughput  the throughput benchmark on this kernel
  minimize    minimize a bucket's program, storing it through the host's store
  variants    run a bucket's program's variants, storing them the same way
  run         run a file (a C reproducer built on the host) and report its exit status
  worker      a campaign worker (campaign/worker.py) whose store is the host's

then exits; init.sh reports the exit status and halts. Nothing here writes a
file the host can see. Modules that import the model are imported only after
the request is read, so the worker can instrument them for Atheris first.

The worker runs in a child process: libFuzzer ends it by exit() (status 77 for
an exception in its callback, after Atheris prints the traceback), so nothing
in it could report its own failure. This process passes the child's output on
to the console, keeps its last lines, and when the child fails sends the host
its error line (failure.py) and that tail, as {"error", "output"}. Its time is
the seconds left that the host sent, counted from the request on this
(the guest's) clock.
"""

from __future__ import annotations

import io
import os
import select
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from fuzzer.campaign.failure import described, error_line, tail
from fuzzer.campaign.options import DEFAULTS, Job
from fuzzer.executor import executor_path
from fuzzer.inject import load
from fuzzer.kernel.channel import Channel, guest_channel
from fuzzer.kernel.messages import (
    Check,
    Checked,
    Exec,
    Executed,
    Halt,
    Measured,
    MessageError,
    Minimize,
    Minimized,
    Probe,
    Probed,
    Ran,
    Repro,
    Reproduced,
    Request,
    Result,
    Run,
    Throughput,
    Variants,
    Varied,
    Worker,
    request_from_json,
)
from fuzzer.kernel.proxy import StoreProxy
from fuzzer.prog import parse
from fuzzer.trace import Supervisor

# The modules that import the model (fuzzer.check and what uses it) are imported
# in the functions that need them, after the request is read: a worker must
# instrument the model for Atheris before anything imports it (campaign/worker.py).


class _Forward(io.StringIO):
    """The file of the guest's console: what the printers write goes to the host as text."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def write(self, text: str) -> int:
        if text:
            self._channel.send({"out": text})
        return len(text)


def main() -> int:
    channel = guest_channel()
    channel.send({"ready": {"release": os.uname().release, "build": os.uname().version}})
    received = channel.recv()
    start = time.monotonic()
    try:
        request = request_from_json(received)
        if isinstance(request, Halt):
            return 0
        if isinstance(request, Worker):
            return _worker_process(channel, request, start)
        result = _answer(channel, request)
    except Exception as e:
        channel.send({"error": described(e)})
        return 1
    channel.send({"result": result.to_json()})
    return 0


def _answer(channel: Channel, request: Request) -> Result:
    """The result of any request but a worker's (and a halt)."""
    match request:
        case Probe():
            return _probe()
        case Exec():
            return _exec(channel, request)
        case Check():
            return _check(request)
        case Repro():
            return _repro(request)
        case Throughput():
            return _throughput(request)
        case Minimize():
            return _minimize(channel, request)
        case Variants():
            return _variants(channel, request)
        case Run():
            return _run(request)
    raise MessageError(f"unknown request {request.MODE!r}")


def _probe() -> Probed:
    from fuzzer.observe.probe import probe  # imports the model

    return Probed(probe().as_dict())


def _supervisor(inject: list[str], budget: float = DEFAULTS.budget) -> Supervisor:
    return Supervisor(executor_path(), budget, injections=[load(s) for s in inject])


def _exec(channel: Channel, request: Exec) -> Executed:
    from fuzzer.campaign.transcript import print_report, step_printer  # import the model
    from fuzzer.check import check

    program = parse(request.text, request.name)
    # Not a terminal: no colours, as the CLI's console would print to a pipe.
    out = Console(file=_Forward(channel), highlight=False, soft_wrap=True)
    with _supervisor(request.inject, request.budget) as supervisor:
        report = check(supervisor, program, step_printer(request.verbose, out))
    print_report(report, out)
    return Executed(bool(report.divergences))


def _check(request: Check) -> Checked:
    from fuzzer.check import check  # imports the model

    with _supervisor(request.inject) as supervisor:
        return Checked([[d.title for d in check(supervisor, parse(t)).divergences]
                        for t in request.texts])


def _repro(request: Repro) -> Reproduced:
    from fuzzer.reduce.repro import reproduce  # imports the model

    with _supervisor(request.inject) as supervisor:
        hits, total = reproduce(parse(request.text, "<program>"), request.title, request.runs,
                                supervisor)
    return Reproduced(hits, total)


def _minimize(channel: Channel, request: Minimize) -> Minimized:
    from fuzzer.reduce.bucket import minimize_bucket  # imports the model
    from fuzzer.reduce.repro import shows

    program, title = parse(request.text, "<program>"), request.title
    with _supervisor(request.inject) as supervisor:
        if not shows(supervisor, program, title):
            return Minimized(False)
        result, step = minimize_bucket(StoreProxy(channel), supervisor, request.bucket, title,
                                       program, request.step, request.runs)
    return Minimized(True, result.program.text(), step, result.predicate_calls,
                     result.original_calls, result.minimized_calls, result.original_weight,
                     result.minimized_weight, result.exhausted)


def _variants(channel: Channel, request: Variants) -> Varied:
    from fuzzer.reduce.repro import shows  # imports the model
    from fuzzer.reduce.variants_run import vary_bucket

    program, title = parse(request.text, "<program>"), request.title
    with _supervisor(request.inject) as supervisor:
        if not shows(supervisor, program, title):
            return Varied(False)
        vary_bucket(StoreProxy(channel), supervisor, request.bucket, program,
                    request.step, request.kind)
    return Varied(True)


def _run(request: Run) -> Ran:
    import subprocess

    try:
        proc = subprocess.run(request.argv, capture_output=True, text=True, errors="replace",
                              timeout=request.timeout, check=False)
    except subprocess.TimeoutExpired:
        return Ran(None, "")
    return Ran(proc.returncode, proc.stdout + proc.stderr)


def _throughput(request: Throughput) -> Measured:
    from fuzzer.campaign.throughput import throughput  # imports the model

    with Supervisor(executor_path()) as supervisor:
        r = throughput(supervisor, request.programs, request.seed, texts=request.texts)
    return Measured(r.programs, r.steps, r.seconds, r.divergent_programs, r.model_seconds)


KEEP_OUTPUT = 1 << 16  # bytes of the worker's output kept, for its error and tail


def _worker_process(channel: Channel, request: Worker, received: float) -> int:
    """Run the worker in a child process; its exit status, its error sent if it failed."""
    job = Job.from_json(request.job)
    # The seconds left, on this guest's clock (its boot was not the worker's time).
    job = replace(job, deadline=received + job.options.time)
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read)
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        # Python's own printing too, whatever sys.stdout and sys.stderr were.
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        status = 0
        try:
            _worker(channel, job)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else int(e.code is not None)
        except BaseException:  # its traceback is its error, for the parent to send
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    os.close(write)
    output = _pass_on(read, pid)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != 0:
        text = output.decode(errors="replace")
        why = error_line(text, code) or f"exit status {code}, and nothing printed"
        channel.send({"error": why, "output": tail(text)})
    return code if code >= 0 else 128 - code  # as a shell says it


def _pass_on(fd: int, pid: int) -> bytes:
    """The child's output, to the console as it comes, until the child has ended; its
    last KEEP_OUTPUT bytes. (The child's own children may hold the pipe open after
    it ends: its end is what counts, not the pipe's.)"""
    kept = bytearray()
    ended, checked = False, time.monotonic()
    while True:
        ready, _, _ = select.select([fd], [], [], 0.0 if ended else 1.0)
        if not ready or time.monotonic() - checked > 1.0:
            if ended and not ready:
                break  # it has ended, and all it wrote is read
            ended, checked = _ended(pid), time.monotonic()
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break  # every writer is gone
            _write_all(2, chunk)
            kept += chunk
            del kept[:-KEEP_OUTPUT]
    os.close(fd)
    return bytes(kept)


def _ended(pid: int) -> bool:
    """Whether the child has ended (it is left to be waited for)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # no console: the output is still kept


def _worker(channel: Channel, job: Job) -> None:
    # Atheris (~0.1 s to import) only for this request; worker.run imports the model itself.
    from fuzzer.campaign import worker

    # A byte search's libFuzzer corpus lives in the guest's scratch tmpfs (TMPDIR, set by
    # init.sh): the host's file system is read-only in the guest. A program search needs
    # no folder: its inputs reach libFuzzer through the mutator (feedback.py).
    folder = None if job.options.search == "programs" else Path(tempfile.gettempdir(), "corpus")
    job = replace(job, options=replace(job.options, corpus=folder))
    worker.run(job, emit=lambda m: channel.send({"worker": m}),
               store=StoreProxy(channel),
               on_run=lambda p: channel.send({"program": p.text()}))


if __name__ == "__main__":
    sys.exit(main())
