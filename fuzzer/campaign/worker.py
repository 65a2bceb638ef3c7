"""One campaign worker: the Atheris harness. Run as `python -m fuzzer.campaign.worker`.

libFuzzer drives the bytes; each input decodes to a Program that is checked on
the kernel against the model. The model and the generator are instrumented, so
libFuzzer's coverage feedback is *semantic* coverage: inputs that reach a new
branch of the model (a new errno path, a new partial-failure case) are kept.

Divergences are written to the store the moment they are found, each in its
own transaction, so killing a worker loses at most half a second of counters.
Progress goes to stdout as JSON lines for the parent (`campaign/run.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import atheris

from fuzzer.prog import ParseError, Program, parse  # not instrumented: no model code in it

if TYPE_CHECKING:
    from fuzzer.store import Store
    from fuzzer.trace import Supervisor
    from fuzzer.trace.supervisor import Run

PROGRESS_EVERY = 0.5  # seconds


def add_campaign_arguments(ap: argparse.ArgumentParser) -> None:
    """What every campaign worker takes, here and in a guest (fuzzer/kernel/campaign.py)."""
    ap.add_argument("--db", required=True)
    ap.add_argument("--campaign", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--budget", type=float, default=5.0)
    ap.add_argument("--corpus", default="")
    ap.add_argument("--seeds", default="")
    ap.add_argument("--crashes", default="")
    ap.add_argument("--inject", action="append", default=[])
    ap.add_argument("--stop-on-first", action="store_true")


def _parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="mmfuzz-worker")
    add_campaign_arguments(ap)
    ap.add_argument("--calls", default="")
    ap.add_argument("--minimize-budget", type=int, default=0)
    ap.add_argument("--explore", type=float, default=0.25)
    return ap.parse_args(argv)


def _stdout(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


Emit = Callable[[dict[str, object]], None]
_sink: Emit = _stdout


def _emit(message: dict[str, object]) -> None:
    _sink(message)


def main(
    argv: list[str],
    *,
    store: Store | None = None,
    emit: Emit | None = None,
    on_run: Callable[[Program], None] | None = None,
) -> None:
    """The worker. In a guest kernel (fuzzer/kernel/guest.py) the store is a proxy to
    the host's, progress goes to the channel (emit), and every program is announced
    before it runs (on_run), so the host knows which one a crashed kernel was running."""
    global _sink
    _sink = emit or _stdout
    args = _parse_args(argv)
    with atheris.instrument_imports(include=["fuzzer.model", "fuzzer.prog.generate"]):
        from fuzzer.model import SUPPORTED, covers  # imported here to be instrumented
        from fuzzer.prog.generate import ByteSource, Source, generate

    from fuzzer.campaign.record import Recorder
    from fuzzer.executor import executor_path
    from fuzzer.inject import load
    from fuzzer.oracle import Divergence
    from fuzzer.reduce.repro import shows
    from fuzzer.store import open_store
    from fuzzer.trace import Supervisor

    started = time.monotonic()
    store = store if store is not None else open_store(args.db)
    supervisor = Supervisor(executor_path(), args.budget, args.cpu,
                            injections=[load(spec) for spec in args.inject])
    if on_run is not None:
        _announce(supervisor, on_run)
    recorder = Recorder(store, args.campaign, supervisor,
                        on_bucket=lambda bid, title, new: _emit(
                            {"bucket": bid, "title": title, "new": new}))
    plain = Supervisor(executor_path(), args.budget, args.cpu) if args.inject else None

    def _attributed(found: list[Divergence], program: Program) -> Divergence | None:
        """The first divergence that is the injection's: one the same program also shows
        without the injection is the kernel's (or the model's), not what is measured."""
        for d in found:
            if plain is None or not shows(plain, program, d.title):
                return d
        return None

    deadline = time.monotonic() + float(args.time)
    max_runs = int(args.runs)
    last = time.monotonic()

    def flush() -> None:
        programs, steps, unsupported = recorder.take_progress()
        store.add_progress(args.campaign, programs=programs, steps=steps,
                           ops=recorder.take_ops())
        _emit({"programs": programs, "steps": steps, "unsupported": unsupported})

    def done() -> bool:
        return time.monotonic() >= deadline or 0 < max_runs <= recorder.programs

    def run_one(program: Program) -> None:
        nonlocal last
        report = recorder.check(program)
        now = time.monotonic()
        for bucket_id, d in recorder.new_buckets:
            if args.minimize_budget > 0 and not args.stop_on_first:
                _reduce(store, supervisor, bucket_id, d.title, program, d.step, args)
        first = _attributed(report.divergences, program) if args.stop_on_first else None
        if first is not None:
            _emit({"first": {"title": first.title, "seconds": now - started,
                             "programs": recorder.programs, "calls": len(program)}})
            flush()
            os._exit(0)
        if now - last >= PROGRESS_EVERY:
            last = now
            flush()
        if done():
            flush()
            os._exit(0)  # libFuzzer would otherwise keep the process; all is stored

    for program in _seed_programs(args.seeds):
        run_one(program)

    calls = SUPPORTED & frozenset(args.calls.split(",")) if args.calls else SUPPORTED
    # Exploration: libFuzzer keeps mutating a small corpus, and rare-but-plain
    # programs (one mlockall(MCL_ONFAULT)) can stay out of reach for minutes. A
    # share of inputs is decoded from fresh random bytes instead (seeded, so a
    # campaign is repeatable); libFuzzer still mutates the rest by coverage.
    rng = random.Random(args.seed)

    def one_input(data: bytes) -> None:
        if rng.random() < args.explore:
            source: Source = ByteSource(rng.randbytes(len(data) or 256))
        else:
            source = atheris.FuzzedDataProvider(data)
        run_one(generate(source, calls, covers))

    # -len_control=0: full-length inputs from the start (a short input is a short
    # program); artifacts go to a temporary folder, never the working directory.
    libfuzzer_args = [sys.argv[0], "-timeout=0", "-rss_limit_mb=0", "-max_len=512",
                      "-use_value_profile=1",
                      "-len_control=0", f"-artifact_prefix={tempfile.gettempdir()}/",
                      f"-seed={args.seed}", f"-max_total_time={int(args.time) + 5}"]
    if args.corpus:
        Path(args.corpus).mkdir(parents=True, exist_ok=True)
        libfuzzer_args.append(args.corpus)
    atheris.Setup(libfuzzer_args, one_input)
    atheris.Fuzz()


def _reduce(store: Store, supervisor: Supervisor, bucket_id: int, title: str,
            program: Program, step: int, args: argparse.Namespace) -> None:
    """Minimize a bucket this worker opened and write its crashes/ folder.

    A failure here costs the bucket its reduction, never the campaign its run:
    it is reported as a warning and fuzzing goes on.
    """
    from fuzzer.reduce.bucket import reduce_new_bucket

    crashes = Path(args.crashes) if args.crashes else None
    try:
        folder = reduce_new_bucket(store, supervisor, bucket_id, title, program, step,
                                   int(args.minimize_budget), crashes)
    except Exception as e:
        _emit({"warning": f"bucket {bucket_id} was not minimized: {type(e).__name__}: {e}"})
        return
    _emit({"reduced": bucket_id, "folder": str(folder) if folder else ""})


def _announce(supervisor: Supervisor, on_run: Callable[[Program], None]) -> None:
    run = supervisor.run

    def announced(program: Program) -> Run:
        on_run(program)
        return run(program)

    supervisor.run = announced  # type: ignore[method-assign]


def _seed_programs(folder: str) -> list[Program]:
    if not folder:
        return []
    programs: list[Program] = []
    for path in sorted(Path(folder).glob("*.prog")):
        try:
            programs.append(parse(path.read_text(), str(path)))
        except ParseError as e:
            _emit({"warning": str(e)})
    return programs


if __name__ == "__main__":
    main(sys.argv[1:])
