"""A campaign: start workers, gather their progress, finish the campaign row.

Each worker is a separate process (`python -m fuzzer.campaign.worker`, or
`fuzzer.campaign.guest_worker` for a guest kernel) given its Job (options.py), pinned
to its own CPU with its children, writing divergences straight into the
store. This parent only reads their JSON progress lines, shows rates, and on
the end (time, runs, Ctrl-C or SIGTERM) stops the workers it started, by pid.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import IO

from fuzzer.campaign.cpus import Placement, parse_cpus, place
from fuzzer.campaign.options import Job, Options
from fuzzer.campaign.spool import drain_folder
from fuzzer.kernel import parse_kernel
from fuzzer.kernel.session import probe as probe_guest
from fuzzer.observe.probe import probe
from fuzzer.store import Store


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

    @property
    def new_buckets(self) -> int:
        return sum(1 for _, new in self.buckets.values() if new)


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    buf: bytes = b""


class _Stop(Exception):
    pass


def _on_term(signo: int, frame: FrameType | None) -> None:
    raise _Stop


def run_campaign(
    store: Store, opts: Options, show: Callable[[Progress], None], every: float = 2.0
) -> Progress:
    placement = place(opts.workers, parse_cpus(opts.cpus) if opts.cpus else ())
    try:
        return _campaign(store, opts, show, every, placement)
    finally:
        placement.close()  # the workers' copies of the locks are gone with them


def _campaign(store: Store, opts: Options, show: Callable[[Progress], None], every: float,
              placement: Placement) -> Progress:
    kernel, features = _kernel(opts)
    options = opts.as_json()
    options["features"] = features  # what the model was told about this kernel
    options["worker_cpus"] = placement.cpus  # where each worker ran
    cid = store.start_campaign(kernel=kernel, host=os.uname().nodename, options=options)
    progress = Progress(cid)
    # Where workers keep the store writes the database cannot take for now (spool.py).
    scratch = Path(tempfile.mkdtemp(prefix=f"mmfuzz-campaign-{cid}-"))
    workers = [_start(i, Job(opts, cid, cpu, features, str(scratch)), placement.fds)
               for i, cpu in enumerate(placement.cpus)]
    old = signal.signal(signal.SIGTERM, _on_term)
    start = last_show = time.monotonic()
    sel = selectors.DefaultSelector()
    for w in workers:
        assert w.proc.stdout is not None
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
    try:
        live = len(workers)
        while live:
            for key, _ in sel.select(timeout=0.5):
                w = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    live -= 1
                    continue
                w.buf += chunk
                *lines, w.buf = w.buf.split(b"\n")
                for line in lines:
                    _absorb(progress, json.loads(line))
            progress.elapsed = time.monotonic() - start
            if time.monotonic() - last_show >= every:
                last_show = time.monotonic()
                show(progress)
        failures = [_failure(w) for w in workers if w.proc.wait() != 0]  # before logs close
        if failures:
            progress.status = "failed"
            raise CampaignError("; ".join(failures))
        progress.status = "done"
    except (KeyboardInterrupt, _Stop):
        progress.status = "interrupted"
        _stop(workers)
    finally:
        signal.signal(signal.SIGTERM, old)
        _stop(workers)
        if progress.status == "running":  # an error on our side: say so, and keep the data
            progress.status = "failed"
        progress.elapsed = time.monotonic() - start
        progress.warnings += drain_folder(store, scratch, store.patience)
        store.finish_campaign(cid, progress.status)
    return progress


def _kernel(opts: Options) -> tuple[str, dict[str, object]]:
    """The release and probed features of the campaign's kernel (a guest boots once for them)."""
    if opts.kernel == "host":
        return os.uname().release, probe().as_dict()
    return probe_guest(parse_kernel(opts.kernel, opts.guest_mem))


def _start(index: int, job: Job, locks: list[int]) -> _Worker:
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the worker
    # Worker i fuzzes with seed+i; the seed programs are run once, by the first.
    opts = job.options
    mine = replace(opts, seed=opts.seed + index, seeds=opts.seeds if index == 0 else None)
    job = replace(job, options=mine)
    # In a guest kernel, a host process stands in for the worker and runs it in the guest.
    module = "fuzzer.campaign.worker" if opts.kernel == "host" else "fuzzer.campaign.guest_worker"
    proc = subprocess.Popen([sys.executable, "-m", module, job.to_json()],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                            pass_fds=locks)  # the CPU locks live while a worker does
    return _Worker(index, proc, log)


def _absorb(progress: Progress, msg: dict[str, object]) -> None:
    if "warning" in msg:
        progress.warnings.append(str(msg["warning"]))
    first = msg.get("first")
    if isinstance(first, dict) and progress.first is None:
        progress.first = first
    if "programs" in msg:
        progress.programs += int(str(msg["programs"]))
        progress.steps += int(str(msg["steps"]))
        progress.unsupported += int(str(msg.get("unsupported", 0)))
    if "bucket" in msg:
        bid = int(str(msg["bucket"]))
        title, new = str(msg["title"]), bool(msg["new"])
        known = progress.buckets.get(bid)
        progress.buckets[bid] = (title, new or (known is not None and known[1]))
        progress.hits[bid] = progress.hits.get(bid, 0) + 1


def _failure(w: _Worker) -> str:
    w.log.seek(0)
    lines = [ln for ln in w.log.read().decode(errors="replace").splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("INFO:", "#", "MS:", "Done"))]
    last = (useful or lines or ["no output"])[-1].strip()
    return f"worker {w.index} exited with status {w.proc.returncode}: {last}"


def _stop(workers: list[_Worker]) -> None:
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGINT)
    for w in workers:
        try:
            w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
        w.log.close()
