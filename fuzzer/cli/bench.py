"""`mmfuzz bench`: the speed figures the project is held to."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from fuzzer.campaign import coverage
from fuzzer.campaign.bench import Detection, corpus_coverage, detect
from fuzzer.campaign.ceiling import Ceiling
from fuzzer.campaign.options import DEFAULTS, Options
from fuzzer.campaign.phases import PHASES, Breakdown
from fuzzer.campaign.target import Target, target_of
from fuzzer.campaign.throughput import Throughput
from fuzzer.cli.common import (
    GuestMemOption,
    check_search,
    fail,
    kernel_of,
    out,
    user_errors,
)
from fuzzer.executor import executor_path
from fuzzer.inject import load
from fuzzer.inject.catalogue import CATALOGUE
from fuzzer.kernel import GUEST_MEM
from fuzzer.prog import ARENA, ProgramError, parse
from fuzzer.prog.arena import HUGE_PAGES, SIZE_ENV
from fuzzer.store import open_store
from fuzzer.trace import Supervisor

app = typer.Typer(help="Benchmarks.", no_args_is_help=True)


@app.command("throughput")
def throughput_cmd(
    programs: Annotated[int, typer.Option("--programs", help="Programs in the workload.",
                                          min=1)] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated workload.")] = 1,
    cpu: Annotated[int, typer.Option("--cpu", help="CPU for the worker and its children.")] = 0,
    kernel: Annotated[list[str] | None, typer.Option(
        "--kernel", help="host or uml:PATH; repeat it to compare kernels on the same workload "
        "(default: host).")] = None,
    guest_mem: GuestMemOption = GUEST_MEM,
    rounds: Annotated[int, typer.Option(
        "--rounds", help="Product and ceiling runs, in pairs, on the host; the figures are "
        "the round of the median ratio.", min=1, max=50)] = 1,
    corpus: Annotated[Path | None, typer.Option(
        "--corpus", help="A folder of programs to run instead of generated ones (a "
        "campaign's --corpus folder, corpus/seeds): the first --programs of its files, in "
        "name order.")] = None,
) -> None:
    """Programs/s and checked steps/s of one worker over a fixed workload: generated
    programs, or a folder's.

    On the host it also runs the C-only ceiling (fuzzer/executor/ceiling.c) on the
    same programs and CPU, and times the product's run phase by phase. On a host
    whose speed varies from minute to minute, --rounds 5 gives a steadier ratio.
    With --corpus set to a campaign's corpus folder it measures the programs that
    campaign ran (longer and deeper than generated ones), so the campaign's own
    rate can be read against it.

    Example: mmfuzz bench throughput --programs 2000

    Example: mmfuzz bench throughput --programs 2000 --cpu 1 --rounds 5

    Example: mmfuzz bench throughput --corpus corpus/campaign --programs 2000

    Example: mmfuzz bench throughput --kernel host --kernel uml:/usr/bin/linux
    """
    with user_errors():
        texts = _folder_programs(corpus) if corpus is not None else []
        targets = [target_of(kernel_of(k, guest_mem)) for k in kernel or ["host"]]
        for i, target in enumerate(targets):
            if i:
                out.print("", markup=False)
            _throughput(target, programs, seed, cpu, rounds, texts,
                        f"programs of {corpus}" if corpus is not None else
                        f"generated programs (seed {seed})")


def _folder_programs(folder: Path) -> list[str]:
    """The texts of `folder`'s files that are programs, in name order (a file that is
    none is skipped, and said once; a folder with none is an error)."""
    if not folder.is_dir():
        raise fail(f"--corpus: {folder} is not a folder")
    texts, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            text = path.read_text()
            parse(text, str(path))
        except (ProgramError, UnicodeDecodeError) as e:
            skipped.append(f"{path.name}: {e}")
            continue
        texts.append(text)
    if not texts:
        raise fail(f"--corpus: {folder} holds no program"
                   + (f" ({len(skipped)} files, first: {skipped[0]})" if skipped else ""))
    if skipped:
        out.print(f"note: {len(skipped)} files of {folder} are not programs, skipped "
                  f"(first: {skipped[0]})", markup=False)
    return texts


def _throughput(target: Target, programs: int, seed: int, cpu: int, rounds: int,
                texts: list[str], what: str) -> None:
    measured = target.throughput(programs, seed, cpu, rounds, texts)
    r = measured.figures
    for line in measured.about:
        out.print(line, markup=False)
    out.print(f"workload: {r.programs} {what}, {r.steps} steps, "
              f"{r.programs and r.steps / r.programs:.1f} steps/program", markup=False)
    out.print(f"one worker: {r.programs_per_s:,.0f} programs/s, "
              f"{r.steps_per_s:,.0f} checked steps/s ({r.seconds:.2f} s)", markup=False)
    share = r.model_seconds / r.seconds if r.seconds else 0.0
    out.print(f"model + oracle alone on the same steps: {r.model_seconds:.2f} s, "
              f"{share:.0%} of the run (the rest: spawn, ptrace, /proc)", markup=False)
    if r.divergent_programs:
        out.print(f"note: {r.divergent_programs} programs diverged (see `mmfuzz exec`)",
                  markup=False)
    if measured.ceiling is None or measured.breakdown is None:
        out.print("ceiling and breakdown: on the host kernel only", markup=False)
        return
    _rounds(measured.rounds)
    _ceiling(r, measured.ceiling)
    _breakdown(r, measured.breakdown)


def _rounds(rounds: tuple[tuple[Throughput, Ceiling], ...]) -> None:
    if not rounds:
        return
    out.print(f"{len(rounds)} rounds (product, then the ceiling on the same programs); "
              "the figures below are the round of the median ratio:", markup=False)
    for k, (r, c) in enumerate(rounds, 1):
        out.print(f"  round {k}: product {r.steps_per_s:,.0f} steps/s, ceiling "
                  f"{c.steps_per_s:,.0f} steps/s, {r.steps_per_s / c.steps_per_s:.1%}",
                  markup=False)


def _ceiling(r: Throughput, c: Ceiling) -> None:
    out.print(f"ceiling (C, fuzzer/executor/ceiling.c; same programs, steps and CPU; the same "
              f"spawn, ptrace stops and /proc reads of every live process, nothing else): "
              f"{c.programs_per_s:,.0f} programs/s, {c.steps_per_s:,.0f} checked steps/s "
              f"({c.seconds:.2f} s)", markup=False)
    if c.failures or (c.programs, c.steps) != (r.programs, r.steps):
        out.print(f"note: the ceiling ran {c.programs} programs, {c.steps} steps "
                  f"({c.failures} failed)", markup=False)
    out.print(f"product / ceiling: {r.steps_per_s / c.steps_per_s:.1%} of the ceiling's "
              f"checked steps/s, {r.programs_per_s / c.programs_per_s:.1%} of its programs/s",
              markup=False)


def _breakdown(r: Throughput, b: Breakdown) -> None:
    overhead = b.total / r.seconds - 1 if r.seconds else 0.0
    out.print(f"breakdown (a second run of the same programs with a timer wrapped around the "
              f"functions of each phase, exclusive times; the timers add {overhead:+.0%} "
              f"to the run: {b.total:.2f} s):", markup=False)
    for phase, what in PHASES.items():
        s = b.seconds[phase]
        out.print(f"  {phase:<13} {s:6.2f} s {s / b.total:4.0%} "
                  f"{s / b.steps * 1e6 if b.steps else 0:6.0f} µs/step  ({what})", markup=False)
    out.print("  store         not in this benchmark (it records nothing; a campaign "
              "writes only divergences)", markup=False)
    out.print(f"ptrace stops: {b.stops / b.steps if b.steps else 0:.2f} waitpid per step "
              f"({b.stops} for {b.steps} steps; a count, not a time)", markup=False)


@app.command("detect")
def detect_cmd(
    runs: Annotated[int, typer.Option("--runs", help="Campaigns per injection.", min=1)] = 5,
    time: Annotated[float, typer.Option("--time", help="Seconds per campaign.", min=1)] = 60,
    inject: Annotated[list[str] | None, typer.Option(
        "--inject",
        help="Injection to measure (repeatable; default: the shallow catalogue).")] = None,
    baseline: Annotated[bool, typer.Option(
        help="Also run the campaigns without injection (they must find nothing).")] = True,
    no_inject: Annotated[bool, typer.Option(
        "--no-inject", help="Only the campaigns without injection: how fast the kernel's own "
        "divergence is found (a regression of a patched --kernel).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
    db: Annotated[str | None, typer.Option(
        "--db", help="Database for the campaigns (default: a temporary one).")] = None,
    kernel: Annotated[str, typer.Option(
        "--kernel", help="host, or uml:PATH (every campaign runs in a guest).")] = "host",
    guest_mem: GuestMemOption = GUEST_MEM,
    search: Annotated[list[str] | None, typer.Option(
        "--search", help="Search to measure: programs, bytes or random (repeatable, for an "
        "ablation in one run; default: programs).")] = None,
    deep: Annotated[bool, typer.Option(
        "--deep", help="The deep injections (those needing several ordered calls; marked deep "
        "in `mmfuzz inject --list`) instead of the shallow ones.")] = False,
) -> None:
    """How fast each injected kernel bug is found: detected k/K, median and worst time.

    Example: mmfuzz bench detect --runs 5 --time 60 --inject populate-needs-lock

    Example: mmfuzz bench detect --runs 3 --search programs --search bytes --search random

    Example: mmfuzz bench detect --no-inject --runs 3 --time 600 --kernel uml:linux/linux
    """
    searches = search or [DEFAULTS.search]
    with user_errors():
        for s in searches:
            check_search(s)
        target = kernel_of(kernel, guest_mem)
        if deep and inject:
            raise fail("--deep and --inject do not go together (--deep picks the injections)")
        if no_inject and (inject or deep or not baseline):
            given = "--inject" if inject else "--deep" if deep else "--no-baseline"
            raise fail(f"--no-inject and {given} do not go together (--no-inject runs only "
                       "the campaigns without injection)")
        # the huge arena's injections by default only there (elsewhere nothing meets them)
        huge = ARENA.pages >= HUGE_PAGES
        names = [] if no_inject else inject or sorted(
            n for n, c in CATALOGUE.items() if c.deep == deep and (huge or not c.huge))
        for name in names:
            if not huge and name in CATALOGUE and CATALOGUE[name].huge:
                raise fail(f"{name} needs the huge arena: run with {SIZE_ENV}=huge")
            load(name)  # fail early on a bad name or plug-in
        url = db or f"sqlite:///{tempfile.mkdtemp(prefix='mmfuzz-detect-')}/detect.sqlite"
        store = open_store(url)
        log = (lambda line: None) if json_out else (lambda line: out.print(line, markup=False))
        tables = {s: detect(store, url, names, runs, time, baseline, log, str(target),
                            guest_mem, s) for s in searches}
    if json_out:
        out.print_json(json.dumps({s: [r.as_dict() for r in rows]
                                   for s, rows in tables.items()}))
        return
    for s, rows in tables.items():
        if len(tables) > 1:
            out.print(f"\nsearch: {s}", markup=False)
        _detect_table(rows)
    out.print(f"database: {url}", markup=False)


def _detect_table(rows: list[Detection]) -> None:
    w = max([28, *(len(r.injection) for r in rows)])
    out.print(f"{'injection':<{w}} {'found':>5} {'median s':>9} {'worst s':>8} "
              f"{'programs':>9} {'calls':>6}  first title", markup=False)
    for r in rows:
        med, worst = r.median_seconds(), r.worst_seconds()
        programs = sorted(int(str(f["programs"])) for f in r.found)
        calls = sorted(int(str(f["calls"])) for f in r.found)
        out.print(f"{r.injection:<{w}} {r.detected:>2}/{r.runs:<2} "
                  f"{'-' if med is None else f'{med:.1f}':>9} "
                  f"{'-' if worst is None else f'{worst:.1f}':>8} "
                  f"{programs[len(programs) // 2] if programs else '-':>9} "
                  f"{calls[len(calls) // 2] if calls else '-':>6}  "
                  f"{r.found[0]['title'] if r.found else ''}", markup=False)


@app.command("coverage")
def coverage_cmd(
    folders: Annotated[list[Path], typer.Argument(help="libFuzzer corpus folders.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
) -> None:
    """The semantic features each corpus folder's programs reach, each run once here.

    Compares what campaigns kept, whichever mmfuzz ran them (their databases need
    not say): events and pairs of events (mmfuzz stats coverage explains them).

    Example: mmfuzz bench coverage /tmp/a/corpus /tmp/b/corpus
    """
    with user_errors():
        for folder in folders:
            if not folder.is_dir():
                raise fail(f"{folder}: not a folder")
        supervisor = Supervisor(executor_path())
        rows = [corpus_coverage(folder, supervisor) for folder in folders]
    sums = [coverage.of_features(r.features) for r in rows]
    if json_out:
        out.print_json(json.dumps([{"folder": r.folder, "programs": r.programs, "other": r.other,
                                    "features": c.features, "events": c.events,
                                    "pairs": c.pairs} for r, c in zip(rows, sums, strict=True)]))
        return
    w = max(len(r.folder) for r in rows)
    out.print(f"{'folder':<{w}} {'programs':>8} {'other':>6} {'features':>8} {'events':>7} "
              f"{'pairs':>7}", markup=False)
    for r, c in zip(rows, sums, strict=True):
        out.print(f"{r.folder:<{w}} {r.programs:>8,} {r.other:>6,} {c.features:>8,} "
                  f"{c.events:>7,} {c.pairs:>7,}", markup=False)


@app.command("memory")
def memory_cmd(
    time: Annotated[float, typer.Option("--time", help="Seconds of the campaign.", min=10)] = 600,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.", min=1)] = 1,
    cpus: Annotated[str, typer.Option("--cpus", help="CPUs to pin the workers to (as `mmfuzz "
                                      "run --cpus`; default: free ones).")] = "",
    every: Annotated[float, typer.Option("--every", help="Seconds between samples.",
                                         min=1)] = 60,
    warmup: Annotated[float, typer.Option("--warmup", help="Seconds of warm-up the growth "
                                          "is measured after.", min=0)] = 120,
    db: Annotated[str | None, typer.Option(
        "--db", help="Database for the campaign (default: a temporary one).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="libFuzzer seed.")] = 0,
    worker_rss: Annotated[int, typer.Option(
        "--worker-rss", metavar="MIB", help="As `mmfuzz run --worker-rss` (0: a worker is "
        "never restarted for its size, to see how it grows).", min=0)] = DEFAULTS.worker_rss,
) -> None:
    """RSS of the campaign process and of each worker while a host campaign runs, and how
    much each grew after the warm-up (a long campaign's memory must stay flat).

    The campaign's libFuzzer corpus is a fresh temporary folder, removed at the end, so
    each run starts from the same place (the database's corpus is planted, as in
    `mmfuzz run`).

    Example: mmfuzz bench memory --time 600 --every 30 --cpus 1
    """
    from fuzzer.campaign.memory import RssSampler, Sample, growth
    from fuzzer.campaign.run import run_campaign

    with user_errors():
        if warmup >= time:
            raise fail(f"--warmup {warmup:g} is not shorter than --time {time:g}")
        scratch = Path(tempfile.mkdtemp(prefix="mmfuzz-memory-"))
        url = db or f"sqlite:///{scratch}/memory.sqlite"
        store = open_store(url)
        opts = Options(db=url, time=time, workers=workers, seed=seed, cpus=cpus,
                       corpus=scratch / "corpus",
                       seeds=Path("corpus/seeds") if Path("corpus/seeds").is_dir() else None,
                       crashes=scratch / "crashes", worker_rss=worker_rss)

        def line(s: Sample) -> None:
            out.print(f"{s.at:>7.0f} s  " + "  ".join(
                f"{p} {kb / 1024:.1f} MB" for p, kb in s.rss.items()), markup=False)

        sampler = RssSampler(every, line).start()
        try:
            result = run_campaign(store, opts, show=lambda p: None, every=1e9)
        finally:
            samples = sampler.stop()
            # the corpus is the run's alone; the database is kept, in here if not given
            shutil.rmtree(scratch if db else scratch / "corpus", ignore_errors=True)
    if result.status == "interrupted":
        raise typer.Exit(130)
    if result.status == "failed":
        raise fail(f"campaign {result.campaign_id} failed: {result.error}", 1)
    out.print(f"campaign {result.campaign_id}: {result.programs:,} programs, "
              f"{len(result.features):,} features; growth after {warmup:g} s:", markup=False)
    for g in growth(samples, warmup):
        out.print(f"  {g.process:<14} {g.first[1] / 1024:7.1f} MB at {g.first[0]:.0f} s -> "
                  f"{g.last[1] / 1024:7.1f} MB at {g.last[0]:.0f} s: {g.mb:+.1f} MB "
                  f"({g.mb_per_min:+.2f} MB/min)", markup=False)
    out.print(f"database: {url}", markup=False)
