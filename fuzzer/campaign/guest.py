"""The guest's side: `python -m fuzzer.campaign.guest`, started by fuzzer/kernel/init.sh.

It opens the channel, says it is ready (with the kernel release), takes one
request and answers it:

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
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import IO, cast

from rich.console import Console

from fuzzer.campaign.options import DEFAULTS, Job
from fuzzer.executor import executor_path
from fuzzer.inject import load
from fuzzer.kernel.channel import Channel, guest_channel
from fuzzer.kernel.proxy import StoreProxy
from fuzzer.prog import Program, parse
from fuzzer.store import Store
from fuzzer.trace import Supervisor

# The modules that import the model (fuzzer.check and what uses it) are imported
# in the functions that need them, after the request is read: a worker must
# instrument the model for Atheris before anything imports it (campaign/worker.py).


class _Forward(io.TextIOBase):
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
    request = channel.recv()
    mode = request.get("mode")
    try:
        match mode:
            case "halt":
                return 0
            case "probe":
                result = _probe()
            case "exec":
                result = _exec(channel, request)
            case "check":
                result = _check(request)
            case "repro":
                result = _repro(request)
            case "throughput":
                result = _throughput(request)
            case "minimize":
                result = _minimize(channel, request)
            case "variants":
                result = _variants(channel, request)
            case "run":
                result = _run(request)
            case "worker":
                _worker(channel, request)
                return 0
            case _:
                raise ValueError(f"unknown request {mode!r}")
    except Exception as e:
        channel.send({"error": f"{type(e).__name__}: {e}".splitlines()[0]})
        return 1
    channel.send({"result": result})
    return 0


def _probe() -> dict[str, object]:
    from fuzzer.observe.probe import probe  # imports the model

    return {"features": probe().as_dict()}


def _supervisor(request: dict[str, object], budget: float = DEFAULTS.budget) -> Supervisor:
    specs = cast(list[str], request.get("inject") or [])
    return Supervisor(executor_path(), float(str(request.get("budget", budget))),
                      injections=[load(s) for s in specs])


def _program(request: dict[str, object]) -> Program:
    return parse(str(request["text"]), str(request.get("name", "<program>")))


def _exec(channel: Channel, request: dict[str, object]) -> dict[str, object]:
    from fuzzer.campaign.transcript import print_report, step_printer  # import the model
    from fuzzer.check import check

    program = _program(request)
    # Not a terminal: no colours, as the CLI's console would print to a pipe.
    out = Console(file=cast(IO[str], _Forward(channel)), highlight=False, soft_wrap=True)
    with _supervisor(request) as supervisor:
        report = check(supervisor, program, step_printer(bool(request.get("verbose")), out))
    print_report(report, out)
    return {"diverged": bool(report.divergences)}


def _check(request: dict[str, object]) -> dict[str, object]:
    from fuzzer.check import check  # imports the model

    texts = [str(t) for t in cast(list[object], request["texts"])]
    with _supervisor(request) as supervisor:
        return {"titles": [[d.title for d in check(supervisor, parse(t)).divergences]
                           for t in texts]}


def _repro(request: dict[str, object]) -> dict[str, object]:
    from fuzzer.reduce.repro import reproduce  # imports the model

    runs = int(str(request["runs"]))
    with _supervisor(request) as supervisor:
        hits, total = reproduce(_program(request), str(request["title"]), runs, supervisor)
    return {"hits": hits, "runs": total}


def _minimize(channel: Channel, request: dict[str, object]) -> dict[str, object]:
    from fuzzer.reduce.bucket import minimize_bucket  # imports the model
    from fuzzer.reduce.repro import shows

    program, title = _program(request), str(request["title"])
    with _supervisor(request) as supervisor:
        if not shows(supervisor, program, title):
            return {"shows": False}
        result, step = minimize_bucket(cast(Store, StoreProxy(channel)), supervisor,
                                       int(str(request["bucket"])), title, program,
                                       int(str(request["step"])), int(str(request["runs"])))
    return {"shows": True, "program": result.program.text(), "step": step,
            **{k: v for k, v in dataclasses.asdict(result).items() if k != "program"}}


def _variants(channel: Channel, request: dict[str, object]) -> dict[str, object]:
    from fuzzer.reduce.repro import shows  # imports the model
    from fuzzer.reduce.variants_run import vary_bucket

    program, title = _program(request), str(request["title"])
    with _supervisor(request) as supervisor:
        if not shows(supervisor, program, title):
            return {"shows": False}
        vary_bucket(cast(Store, StoreProxy(channel)), supervisor, int(str(request["bucket"])),
                    program, int(str(request["step"])), str(request["kind"]))
    return {"shows": True}


def _run(request: dict[str, object]) -> dict[str, object]:
    import subprocess

    argv = [str(a) for a in cast(list[object], request["argv"])]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=float(str(request.get("timeout", 60))), check=False)
    except subprocess.TimeoutExpired:
        return {"status": None, "output": ""}
    return {"status": proc.returncode, "output": proc.stdout + proc.stderr}


def _throughput(request: dict[str, object]) -> dict[str, object]:
    from fuzzer.campaign.bench import throughput  # imports the model

    with Supervisor(executor_path()) as supervisor:
        r = throughput(supervisor, int(str(request["programs"])), int(str(request["seed"])))
    return dataclasses.asdict(r)


def _worker(channel: Channel, request: dict[str, object]) -> None:
    # Atheris (~0.1 s to import) only for this request; worker.run imports the model itself.
    from fuzzer.campaign import worker

    job = Job.from_json(str(request["job"]))
    # libFuzzer's corpus lives in the guest's scratch tmpfs (TMPDIR, set by init.sh):
    # the host's file system is read-only in the guest.
    job = replace(job, options=replace(job.options, corpus=Path(tempfile.gettempdir(), "corpus")))
    worker.run(job, emit=lambda m: channel.send({"worker": m}),
               store=cast(Store, StoreProxy(channel)),
               on_run=lambda p: channel.send({"program": p.text()}))


if __name__ == "__main__":
    sys.exit(main())
