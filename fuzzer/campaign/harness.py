"""The Atheris harness of one campaign worker: its state, and what one input does.

Import it only through worker.py, which imports the model and the generator
instrumented first (this module imports them again, already instrumented).
Progress and findings are messages (`Emit`): JSON lines on the worker's channel
to the parent (`campaign/run.py`, channel.py), or lines on the channel in a guest.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import atheris

from fuzzer.campaign.channel import Emit
from fuzzer.campaign.feedback import Feedback, SharedCorpus
from fuzzer.campaign.memory import MemTrace, rss_kb, settled_heap
from fuzzer.campaign.options import GUEST_DB, Job
from fuzzer.campaign.packed import pack, unpack
from fuzzer.campaign.record import Recorder
from fuzzer.campaign.spool import Spool, spool_path
from fuzzer.executor import executor_path
from fuzzer.inject import load
from fuzzer.model import SUPPORTED, covers
from fuzzer.prog import ParseError, Program, ProgramError, parse
from fuzzer.prog.generate import ByteSource, Source, generate
from fuzzer.prog.mutate import mutate, splice
from fuzzer.reduce.bucket import reduce_new_bucket
from fuzzer.store import Store, StoreUnreachable
from fuzzer.store.ports import WorkerStore
from fuzzer.trace import Supervisor
from fuzzer.trace.supervisor import Run

PROGRESS_EVERY = 0.5  # seconds between progress messages to the campaign (its live view)
# seconds between the worker's writes of its progress and new corpus entries to the store:
# each is a transaction (a WAL fsync in SQLite), about 5 % of a worker's time at every
# progress message
STORE_EVERY = 5.0
RSS_EVERY = 5.0  # seconds between looks at the worker's own RSS (--worker-rss)
RECYCLE_LEFT = 30.0  # seconds: a worker with less time left is not restarted for its size
RECYCLE_AGE = 20.0  # seconds a worker runs at least before it is restarted for its size
POINT_EVERY = 10.0  # seconds between progress points (the report's programs/s over time)


class Worker:
    """One worker's supervisor, recorder and counters, from its Job to its end."""

    def __init__(self, job: Job, store: WorkerStore, emit: Emit,
                 on_run: Callable[[Program], None] | None = None) -> None:
        self.job, self.opts, self.store, self.emit = job, job.options, store, emit
        self.started = time.monotonic()
        opts = self.opts
        self.supervisor = Supervisor(executor_path(), opts.budget, job.cpu,
                                     injections=[load(spec) for spec in opts.injections])
        if on_run is not None:
            _announce(self.supervisor, on_run)
        # Without the injections: tells the injection's divergences from the kernel's.
        plain = Supervisor(executor_path(), opts.budget, job.cpu) if opts.injections else None
        # A spool keeps writes aside while a database server is away: only a Store of
        # this process's own has one (a guest's proxy has no scratch folder).
        path = spool_path(job.scratch)
        spool = Spool(store, path) if path is not None and isinstance(store, Store) else None
        self.recorder = Recorder(store, job.campaign, self.supervisor, on_bucket=self._bucket,
                                 plain=plain, coverage=True, spool=spool)
        # Semantic features: libFuzzer's counters for them (before atheris.Setup), the
        # ones this worker has seen, and the programs that reached them first, shared.
        self.feedback = Feedback(counters=opts.feedback != "lines")
        programs = opts.search == "programs"  # else libFuzzer's folder is opts.corpus
        self.corpus = SharedCorpus(store, job.campaign, opts.corpus if programs else None,
                                   shared=opts.db != GUEST_DB, inputs=programs,
                                   others=not opts.fresh)
        self.new_features: list[str] = []  # since the last progress message
        self.deadline = job.deadline if job.deadline is not None else self.started + opts.time
        self.last = time.monotonic()  # of the last progress message
        self.last_point = self.last - POINT_EVERY  # a point at the first flush
        self.last_store = self.last  # of the last store write
        self.unstored = (0, 0)  # programs and steps not yet written to the store
        # Exploration: libFuzzer keeps mutating a small corpus, and rare-but-plain
        # programs (one mlockall(MCL_ONFAULT)) can stay out of reach for minutes. A
        # share of inputs is decoded from fresh random bytes instead (seeded, so a
        # campaign is repeatable); libFuzzer still mutates the rest by coverage.
        self.rng = random.Random(opts.seed)
        self.calls = SUPPORTED & frozenset(opts.calls) if opts.calls else SUPPORTED
        self.memtrace = MemTrace.from_env(job.worker)  # MMFUZZ_TRACEMALLOC: off by default
        self.made: tuple[bytes, Program] | None = None  # the mutator's last output (_made)
        # the next look at its own RSS: not before it has run a while (a bound below what
        # a worker takes to start would otherwise restart it over and over)
        self.next_rss = self.started + RECYCLE_AGE

    def fuzz(self) -> None:
        """Run the seed programs, then fuzz until the time or the runs are used."""
        if self.corpus.shared and isinstance(self.store, Store):
            # The features the campaign's corpus covers already (a worker restarted or
            # resumed): seen, so that only what is new to the campaign is stored again.
            # Its counters are still fresh: libFuzzer keeps the planted programs.
            self.feedback.seen.update(
                f for _, _, fs in self.store.corpus_features([self.job.campaign]) for f in fs)
        seeds = self._seed_programs()
        for program in seeds:
            if self.run_one(program):
                return
        if self.opts.search == "programs":
            self.emit({"planted": self.corpus.plant(seeds)})
            atheris.Setup(self._libfuzzer_args(), self.one_input,
                          custom_mutator=self.mutator, custom_crossover=self.crossover)
        else:
            atheris.Setup(self._libfuzzer_args(), self.one_input)
        with settled_heap():  # seeds run: what lives now lives on
            atheris.Fuzz()

    def one_input(self, data: bytes) -> None:
        """libFuzzer's callback: decode one program from the input and check it."""
        fresh = self.opts.search == "random" or self.rng.random() < self.opts.explore
        if fresh:
            source: Source = ByteSource(self.rng.randbytes(
                fresh_size(data, self.opts.search == "programs") or 256))
            program = generate(source, self.calls, covers)
        elif self.made is not None and self.made[0] == data:
            program = self.made[1]  # the mutator's last output: no need to parse its text
        else:
            program = self.program_of(data, cached=False)  # a new mutant, run once
        self.made = None
        if self.run_one(program, fresh):
            # libFuzzer never returns from Fuzz() but at its own -max_total_time, and
            # an exception out of this callback is a crash to it (an artifact, a
            # failed status): the end is an immediate exit. Everything is stored.
            os._exit(0)

    def run_one(self, program: Program, fresh: bool = False) -> bool:
        """Check one program and record what it shows; whether the worker is finished.

        A `fresh` program is not libFuzzer's input: its features would credit the
        input, so they hit no counter, and a program reaching new ones is queued for
        libFuzzer instead (the corpus's inbox), which runs it again and keeps it."""
        report = self.recorder.check(program)
        new = self.feedback.hit(self.recorder.covered, counters=not fresh)
        if new:
            self.corpus.add(program, new, deliver=fresh)
            self.new_features += new
        now = time.monotonic()
        opts = self.opts
        for bucket_id, d in self.recorder.new_buckets:
            if opts.minimize_budget > 0 and not opts.stop_on_first:
                self._reduce(bucket_id, d.title, program, d.step, str(d.kind))
        # With injections, a benchmark measures the first divergence they cause.
        found = self.recorder.injected if opts.injections else report.divergences
        first = found[0] if opts.stop_on_first and found else None
        if first is not None:
            self.emit({"first": {"title": first.title, "seconds": now - self.started,
                                 "programs": self.recorder.programs, "calls": len(program)}})
            self.flush(final=True)
            return True
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.flush()
            rss = self._too_big(now)
            if rss:
                # libFuzzer's corpus, in memory, grows with the search: a worker that has
                # grown past its bound ends, and the campaign starts it again at once with
                # the corpus from the database (planted: feedback.py).
                self.emit({"recycle": rss})
                self.flush(final=True)
                return True
        if now >= self.deadline or 0 < opts.runs <= self.recorder.programs:
            self.flush(final=True)
            return True
        return False

    def _too_big(self, now: float) -> int:
        """The worker's RSS in MiB when it passed --worker-rss (0 when not, or when the
        campaign's time is nearly over: a restart would not pay for itself)."""
        limit = self.opts.worker_rss
        if not limit or now < self.next_rss or self.deadline - now < RECYCLE_LEFT:
            return 0
        self.next_rss = now + RSS_EVERY
        rss = rss_kb() // 1024
        return rss if rss > limit else 0

    def program_of(self, data: bytes, cached: bool = True) -> Program:
        """An input as a program: its packed text (the corpus of a program search), or else
        what the generator decodes from its bytes (a byte search; the first inputs).
        The mutator's inputs are corpus entries, parsed again and again: `cached`."""
        if self.opts.search == "programs":
            program = _text_program(data) if cached else _text_program.__wrapped__(data)
            if program is not None:
                return program
        return generate(atheris.FuzzedDataProvider(data), self.calls, covers)

    def mutator(self, data: bytes, max_size: int, seed: int) -> bytes:
        """libFuzzer's custom mutator: one change to the input's program, or a queued
        program instead (planted, pulled, or fresh with new features: feedback.py)."""
        queued = self.corpus.next_input(max_size)
        if queued is not None:
            return queued
        src = ByteSource(random.Random(seed).randbytes(512))
        return self._made(mutate(self.program_of(data), src, self.calls, covers), max_size)

    def crossover(self, data1: bytes, data2: bytes, max_size: int, seed: int) -> bytes:
        """libFuzzer's custom cross-over: the head of one program, the tail of another
        (or a queued program, as the mutator)."""
        queued = self.corpus.next_input(max_size)
        if queued is not None:
            return queued
        src = ByteSource(random.Random(seed).randbytes(64))
        return self._made(splice(self.program_of(data1), self.program_of(data2), src), max_size)

    def _made(self, program: Program, max_size: int) -> bytes:
        """The mutator's output, kept with its program: libFuzzer runs it next (one_input),
        and parsing it again cost about 5 % of a worker's time."""
        data, fitted = _fit(program, max_size)
        self.made = None if fitted is None else (data, fitted)
        return data

    def flush(self, *, final: bool = False) -> None:
        """A progress message; every STORE_EVERY seconds (and at the end) the progress
        and the new corpus entries to the store too."""
        programs, steps, unsupported = self.recorder.take_progress()
        now = time.monotonic()
        self.unstored = (self.unstored[0] + programs, self.unstored[1] + steps)
        if final or now - self.last_store >= STORE_EVERY:
            self.last_store = now
            self.recorder.write_progress(self.job.campaign, *self.unstored)
            self.unstored = (0, 0)
            if not self.recorder.store_away:  # the corpus waits (in memory) for the server
                with contextlib.suppress(StoreUnreachable):  # gone since: the same
                    self.corpus.store_pending()
        spool = self.recorder.spool
        if final and spool is not None:
            spool.drain(now=True)  # the campaign's parent writes what is left (drain_folder)
            for warning in spool.failed:
                self.emit({"warning": warning})
        if not self.recorder.store_away:
            with contextlib.suppress(StoreUnreachable):
                self.corpus.pull(now)
        for warning in self.corpus.take_warnings():
            self.emit({"warning": warning})
        if self.memtrace is not None:
            self.memtrace.tick(now)
        if final or now - self.last_point >= POINT_EVERY:
            self.last_point = now
            self.recorder.write_point(self.job.campaign, self.job.worker, self.job.totals)
        # `final`: the worker's last message (a guest's worker is then done, its guest
        # can go without waiting for it to power off).
        self.emit({"programs": programs, "steps": steps, "unsupported": unsupported,
                   "features": self.new_features, **({"final": True} if final else {})})
        self.new_features = []

    def _bucket(self, bucket_id: int, title: str, new: bool) -> None:
        self.emit({"bucket": bucket_id, "title": title, "new": new})

    def _reduce(self, bucket_id: int, title: str, program: Program, step: int,
                kind: str) -> None:
        """Minimize a bucket this worker opened, write its crashes/ folder, run its variants.

        A failure here costs the bucket its reduction, never the campaign its run:
        it is reported as a warning and fuzzing goes on.
        """
        try:
            folder = reduce_new_bucket(self.store, self.supervisor, bucket_id, title, program,
                                       step, self.opts.minimize_budget, self.opts.crashes, kind)
        except Exception as e:
            self.emit({"warning": f"bucket {bucket_id} was not minimized: "
                                  f"{type(e).__name__}: {e}"})
            return
        self.emit({"reduced": bucket_id, "folder": str(folder) if folder else ""})

    def _seed_programs(self) -> list[Program]:
        if self.opts.seeds is None:
            return []
        programs: list[Program] = []
        for path in sorted(self.opts.seeds.glob("*.prog")):
            try:
                programs.append(parse(path.read_text(), str(path)))
            except ParseError as e:
                self.emit({"warning": str(e)})
        return programs

    def _libfuzzer_args(self) -> list[str]:
        # -len_control=0: full-length inputs from the start (a short input is a short
        # program); artifacts (crash files) go to the worker's scratch folder, given by
        # the campaign (a temporary folder in a guest), never the working directory.
        # A program search gives libFuzzer no folder: its inputs come through the
        # mutator (SharedCorpus.inbox) and its corpus is kept in the database.
        opts = self.opts
        scratch = self.job.scratch or tempfile.gettempdir()
        max_len = MAX_TEXT if opts.search == "programs" else 512
        args = [sys.argv[0], "-timeout=0", "-rss_limit_mb=0", f"-max_len={max_len}",
                "-use_value_profile=1",
                "-len_control=0", f"-artifact_prefix={scratch}/",
                f"-seed={opts.seed}",
                # a backstop: the worker ends itself at its deadline (run_one)
                f"-max_total_time={max(0, int(self.deadline - time.monotonic())) + 5}"]
        if opts.search == "programs":
            args.append("-reload=0")
        elif opts.corpus is not None:
            Path(opts.corpus).mkdir(parents=True, exist_ok=True)
            args.append(str(opts.corpus))
        return args


MAX_TEXT = 8192  # bytes of program text an input may unpack to (about 100 calls)
# Corpus entries kept parsed for the mutator, about 4 kB each: a miss costs one parse, under
# 1 % of a program's check, while a cache the size of the corpus would grow with it.
PROGRAMS_CACHED = 256


@functools.lru_cache(maxsize=PROGRAMS_CACHED)
def _text_program(data: bytes) -> Program | None:
    """An input's program, from its packed text (packed.py); None if it is not one.
    (Cached: libFuzzer hands the same corpus entries to the mutator again and again,
    and parsing costs about 25 µs a call. A cached program with its text takes about
    4 kB.)"""
    text = unpack(data)
    if text is None:
        return None
    try:
        return parse(text.decode())
    except (UnicodeDecodeError, ProgramError):
        return None


def fresh_size(data: bytes, programs: bool) -> int:
    """How many random bytes a fresh program is decoded from in place of the input
    `data`: in a program search, as many as its program text is long (packed, the input
    is about a fifth of that, and programs decoded from a fifth of the bytes came out a
    third shorter), else as many as its bytes."""
    if programs and (text := unpack(data)) is not None:
        return len(text)
    return len(data)


def _fit(program: Program, max_size: int) -> tuple[bytes, Program | None]:
    """The program as an input (its packed text), less its last calls while its text is
    longer than MAX_TEXT or the input longer than max_size, and the program it is (None
    for a single call that does not fit: its input is cut short, no longer a program)."""
    calls = program.calls
    while True:
        fitted = Program(calls)
        text = fitted.text().encode()
        data = pack(text)
        if len(text) <= MAX_TEXT and len(data) <= max_size:
            return data, fitted
        if len(calls) <= 1:
            return data[:max_size], None
        calls = calls[:-1]


def _announce(supervisor: Supervisor, on_run: Callable[[Program], None]) -> None:
    """Call on_run with every program before the supervisor runs it."""
    run = supervisor.run

    def announced(program: Program) -> Run:
        on_run(program)
        return run(program)

    supervisor.run = announced  # type: ignore[method-assign]
