"""The `mmfuzz` command: a thin Typer shell over the library.

Each command parses its options and calls one library function; errors users
can cause are one line on stderr and exit status 2 (`exec` uses 1 for "the
kernel diverged from the model").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fuzzer.campaign.cpus import check_cpus, parse_cpus
from fuzzer.campaign.options import DEFAULTS, FEEDBACKS, Options
from fuzzer.campaign.run import Progress, resume_campaign, resume_options, run_campaign
from fuzzer.campaign.target import target_of
from fuzzer.cli import bench, kernels, reduce, report, stats, status, triage, variants
from fuzzer.cli.common import (
    DbOption,
    GuestMemOption,
    InjectOption,
    KernelOption,
    check_search,
    err,
    fail,
    injections,
    kernel_of,
    out,
    user_errors,
)
from fuzzer.cli.live import CampaignView
from fuzzer.cli.show import print_summary
from fuzzer.executor import executor_path
from fuzzer.inject.catalogue import CATALOGUE
from fuzzer.model import SUPPORTED
from fuzzer.prog import parse, read_program
from fuzzer.prog.arena import size_error
from fuzzer.store import Store, open_store
from fuzzer.trace.follow import run_command

app = typer.Typer(
    name="mmfuzz",
    help="Fuzz the kernel's memory-locking and mapping calls against a reference model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(triage.app, name="triage")
app.add_typer(bench.app, name="bench")
app.add_typer(stats.app, name="stats")
app.command("minimize")(reduce.minimize_cmd)
app.command("repro")(reduce.repro_cmd)
app.command("export")(reduce.export_cmd)
app.command("variants")(variants.variants_cmd)
app.add_typer(kernels.app, name="kernels")
app.command("report")(report.report_cmd)
app.command("status")(status.status_cmd)


TimeOpt = Annotated[float, typer.Option("--time", help="Seconds to fuzz.", min=1)]
RunsOpt = Annotated[int, typer.Option(
    "--runs", help="Stop after N programs per worker (0: no limit).", min=0)]
CorpusOpt = Annotated[Path, typer.Option(
    "--corpus", help="Folder keeping the corpus as files across campaigns: every program "
    "stored is written there, its newest are planted at start (the corpus itself is in the "
    "database).")]
WorkerRssOpt = Annotated[int, typer.Option(
    "--worker-rss", metavar="MIB", help="Restart a worker whose memory (RSS) passes MIB, at "
    "once, with the corpus from the database (0: never).", min=0)]
SeedsOpt = Annotated[Path, typer.Option("--seeds", help="Folder of seed programs run first.")]
FreshOpt = Annotated[bool, typer.Option(
    "--fresh", help="Start from nothing stored: plant neither the database's corpus and "
    "buckets nor the --corpus folder's programs (the seeds still run), e.g. to compare "
    "kernels with campaigns that do not learn from each other.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="libFuzzer seed (worker i uses seed+i).")]
WorkersOpt = Annotated[int, typer.Option(
    "--workers", help="Worker processes, one CPU each.", min=1)]
CpusOpt = Annotated[str | None, typer.Option(
    "--cpus", help="CPUs to pin the workers to, e.g. 1 or 0,1 or 0-3 (default: CPUs no other "
    "campaign on this host holds).")]
BudgetOpt = Annotated[float, typer.Option(
    "--budget", help="Wall-clock seconds per program before it counts as a hang.", min=0.1)]
MinimizeOpt = Annotated[int, typer.Option(
    "--minimize-budget", help="Runs spent minimizing each new bucket (0: none).", min=0)]
CrashesOpt = Annotated[Path, typer.Option(
    "--crashes", help="Folder for new buckets' reproducers (one folder per bucket).")]
ExploreOpt = Annotated[float, typer.Option(
    "--explore", help="Share of inputs generated from fresh random bytes (0-1).", min=0, max=1)]
SearchOpt = Annotated[str, typer.Option(
    "--search", help="programs: mutate program text (the default); bytes: libFuzzer's byte "
    "mutations of the generator's input; random: fresh programs only.")]
FeedbackOpt = Annotated[str, typer.Option(
    "--feedback", help="What libFuzzer counts as coverage: semantic (the features of the "
    "checked programs, the default), lines (of the instrumented model) or both.")]
CallsOpt = Annotated[str | None, typer.Option(
    "--calls", help="Comma-separated calls to generate (default: every modelled call).")]
PlainOpt = Annotated[bool, typer.Option(
    "--plain", help="Plain progress lines even on a terminal (instead of the live view).")]
ResumeOpt = Annotated[int | None, typer.Option(
    "--resume", metavar="ID", help="Continue campaign ID (interrupted, failed or lost) for "
    "the time it has left, with its stored options (--workers, --cpus, --budget, --corpus, "
    "--crashes, --guest-mem, --worker-rss may change).", min=1)]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Show the arena after every step.")]

# The folders `mmfuzz run` uses unless told otherwise (a campaign run from the
# library has none: Options' defaults are None).
CORPUS, SEEDS, CRASHES = Path("corpus/campaign"), Path("corpus/seeds"), Path("crashes")


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    time: TimeOpt = DEFAULTS.time,
    runs: RunsOpt = DEFAULTS.runs,
    db: DbOption = DEFAULTS.db,
    corpus: CorpusOpt = CORPUS,
    seeds: SeedsOpt = SEEDS,
    seed: SeedOpt = DEFAULTS.seed,
    workers: WorkersOpt = DEFAULTS.workers,
    cpus: CpusOpt = None,
    budget: BudgetOpt = DEFAULTS.budget,
    inject: InjectOption = None,
    calls: CallsOpt = None,
    minimize_budget: MinimizeOpt = DEFAULTS.minimize_budget,
    crashes: CrashesOpt = CRASHES,
    explore: ExploreOpt = DEFAULTS.explore,
    search: SearchOpt = DEFAULTS.search,
    feedback: FeedbackOpt = DEFAULTS.feedback,
    kernel: KernelOption = DEFAULTS.kernel,
    guest_mem: GuestMemOption = DEFAULTS.guest_mem,
    worker_rss: WorkerRssOpt = DEFAULTS.worker_rss,
    fresh: FreshOpt = DEFAULTS.fresh,
    plain: PlainOpt = False,
    resume: ResumeOpt = None,
) -> None:
    """Run a fuzzing campaign against the running kernel (or a UML one) and store what diverges.

    A worker that dies is restarted (after 1, 2, 4 s; given up after 4 deaths in a
    minute, which fails the campaign). A worker whose memory passes --worker-rss is
    restarted at once, with the corpus from the database. Exit status: 0 when the campaign ran its
    time, 130 when interrupted, 1 when it failed (its worker logs are kept).

    On a terminal the campaign shows a live view: each worker's state and rate over the
    last 10 s and overall, buckets as they are found, features, events. Piped (or with
    --plain), a progress line every 2 s, and each event on a line of its own.

    With --kernel uml:PATH every worker runs in a User-Mode Linux guest booted
    from PATH; this process keeps the database. A guest that panics or stops
    answering is a finding (kernel-crash, hang), and a new guest boots.

    With --resume ID a campaign that was interrupted, failed or lost goes on in
    its own row for the time it has left, with the options it stored; a campaign
    still running, done, or with no time left is refused (exit status 2).

    Example: mmfuzz run --time 600 --db sqlite:///db/mmfuzz.sqlite

    Example: mmfuzz run --time 300 --kernel uml:../linux/linux

    Example: mmfuzz run --resume 7 --workers 4
    """
    progress = _resume(ctx, resume, plain) if resume is not None else _run(ctx.params, plain)
    if progress.status == "interrupted":
        raise typer.Exit(130)
    if progress.status == "failed":
        raise fail(f"campaign {progress.campaign_id} failed: {progress.error or 'see above'}", 1)


def _run(params: dict[str, Any], plain: bool) -> Progress:
    """A new campaign, with the options given."""
    with user_errors():
        opts = _options(params)
        _preflight(opts.kernel, opts.guest_mem)
        store = open_store(opts.db)
        return _watched(store, opts, plain, lambda view: run_campaign(
            store, opts, view.show, view.every, say=view.say, watch=view.watch))


def _watched(store: Store, opts: Options, plain: bool,
             campaign: Callable[[CampaignView], Progress]) -> Progress:
    """A campaign run under the live view (or plain lines), then its summary."""
    with CampaignView(out, opts, live=_live(plain)) as view:
        progress = campaign(view)
        view.finish(progress)
    print_summary(progress, store)
    return progress


def _live(plain: bool) -> bool:
    """The live view, or plain lines: a dumb terminal (TERM=dumb: an editor's shell)
    cannot redraw, and --plain asks for lines."""
    return out.is_terminal and not out.is_dumb_terminal and not plain


def _resume(ctx: typer.Context, cid: int, plain: bool) -> Progress:
    """Campaign `cid` continued, with the options it stored and those given that may change."""
    given = {name for name in ctx.params if name != "resume" and (
        (source := ctx.get_parameter_source(name)) is not None
        and source.name in ("COMMANDLINE", "ENVIRONMENT"))}
    with user_errors():
        opts = _options(ctx.params)  # checks what was given
        fields = {"inject": "injections"}
        changes = {fields.get(name, name): getattr(opts, fields.get(name, name))
                   for name in given}
        changes["db"] = opts.db  # where it was found, whatever URL it was started with
        store = open_store(opts.db, create=False)
        resumed = resume_options(store.campaign(cid), changes)
        _preflight(resumed.kernel, resumed.guest_mem)
        return _watched(store, resumed, plain, lambda view: resume_campaign(
            store, cid, resumed, view.show, view.every, say=view.say, watch=view.watch))


def _preflight(kernel: str, guest_mem: int) -> None:
    """Fail early, in one line: not root, no compiler, a missing guest kernel."""
    target_of(kernel_of(kernel, guest_mem)).preflight()


def _options(p: dict[str, Any]) -> Options:
    """The command line's options, checked (one line, exit 2, for a bad one)."""
    inject, search, feedback, cpus, calls = (p["inject"], p["search"], p["feedback"],
                                             p["cpus"], p["calls"])
    injections(inject)  # and on a bad injection
    check_search(search)
    if feedback not in FEEDBACKS:
        raise fail(f"--feedback {feedback!r}: one of {', '.join(FEEDBACKS)}")
    if cpus is not None:
        check_cpus(parse_cpus(cpus))
    wanted = tuple(c.strip() for c in calls.split(",")) if calls else ()
    unknown = sorted(set(wanted) - SUPPORTED)
    if unknown:
        raise fail(f"--calls: {', '.join(unknown)} not modelled (modelled: "
                   f"{', '.join(sorted(SUPPORTED))})")
    seeds: Path = p["seeds"]
    target = kernel_of(p["kernel"], p["guest_mem"])
    return Options(db=p["db"], time=p["time"], runs=p["runs"], workers=p["workers"],
                   seed=p["seed"], budget=p["budget"], corpus=p["corpus"],
                   seeds=seeds if seeds.is_dir() else None, injections=tuple(inject or ()),
                   calls=wanted, minimize_budget=p["minimize_budget"], crashes=p["crashes"],
                   explore=p["explore"], search=search, feedback=feedback,
                   kernel=str(target), kernel_name=target.name or "",
                   guest_mem=p["guest_mem"], cpus=cpus or "", worker_rss=p["worker_rss"],
                   fresh=p["fresh"])


@app.command("exec")
def exec_cmd(
    file: Annotated[Path, typer.Argument(help="Program text file ('-' for stdin).")],
    verbose: VerboseOpt = False,
    budget: BudgetOpt = DEFAULTS.budget,
    inject: InjectOption = None,
    kernel: KernelOption = DEFAULTS.kernel,
    guest_mem: GuestMemOption = DEFAULTS.guest_mem,
) -> None:
    """Run one program on the kernel and compare every step with the model.

    Exit status 0 when the kernel agrees, 1 on a divergence (a guest kernel's
    crash is one).

    Example: mmfuzz exec corpus/seeds/01-populate-without-lock.prog

    Example: mmfuzz exec --kernel uml:/usr/bin/linux corpus/seeds/05-map-locked.prog
    """
    with user_errors():
        try:
            if str(file) == "-":
                text = read_program(sys.stdin, "<stdin>")
            else:
                with file.open(encoding="utf-8") as f:
                    text = read_program(f, str(file))
        except UnicodeDecodeError:
            raise fail(f"{file}: not a program text file (not UTF-8)") from None
        parse(text, str(file))  # a bad program fails before a bad --kernel
        diverged = target_of(kernel_of(kernel, guest_mem)).exec(
            text, str(file), verbose, budget, inject or [], out)
    if diverged:
        raise typer.Exit(1)


@app.command(
    "inject",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def inject_cmd(
    command: Annotated[list[str] | None, typer.Argument(
        help="The command to run, after `--`.", show_default=False)] = None,
    inject: InjectOption = None,
    list_: Annotated[bool, typer.Option("--list", help="List the catalogue and exit.")] = False,
) -> None:
    """Run any command, and every process it forks, on an emulated buggy kernel.

    Exits with the command's status (128+N if a signal N killed it).

    Example: mmfuzz inject --inject populate-needs-lock -- ./repro
    """
    if list_:
        for name, cls in sorted(CATALOGUE.items()):
            mark = (" [dim](deep)[/]" if cls.deep else "") + \
                (" [dim](huge arena)[/]" if cls.huge else "")
            out.print(f"[bold]{name}[/]{mark}\n  {cls.description}\n  source: {cls.source}")
        return
    if not command:
        raise fail("no command given (usage: mmfuzz inject --inject NAME -- COMMAND [ARGS...])")
    with user_errors():
        status = run_command(executor_path(), command, injections(inject))
    raise typer.Exit(status)


def main() -> None:
    if (bad := size_error()) is not None:  # the arena was bound at import: refuse it now
        err.print(f"mmfuzz: {bad}", markup=False)
        raise SystemExit(2)
    try:
        app()
    except KeyboardInterrupt:
        err.print("mmfuzz: interrupted")
        raise SystemExit(130) from None


__all__ = ["app", "fail", "main", "out"]
