"""How results look to people: exec transcripts, campaign progress and summaries."""

from __future__ import annotations

from dataclasses import fields

from fuzzer.campaign.run import Progress
from fuzzer.check import Report, StepHook, StepReport
from fuzzer.cli.common import out
from fuzzer.model import State
from fuzzer.model.features import Features
from fuzzer.observe import Snapshot
from fuzzer.observe.probe import probe
from fuzzer.oracle import Divergence, kernel_view, model_view, render, signal_text, value_text
from fuzzer.prog import format_call
from fuzzer.store import Store


def _outcome(rep: StepReport) -> str:
    if rep.call.name == "touch":
        return signal_text(rep.signal)
    if rep.call.name == "exit":
        return "exited"
    return "= " + value_text(rep.call, rep.ret)


def step_printer(verbose: bool) -> StepHook:
    def hook(rep: StepReport, state: State | None, snap: Snapshot | None) -> None:
        mark = "  DIVERGES" if rep.divergences else ""
        out.print(f"{rep.index:3}  {format_call(rep.call):<78} {_outcome(rep)}{mark}", markup=False)
        if state is None or snap is None:
            return  # the caller has exited: nothing of it to show
        if verbose or rep.divergences:
            model, kernel = render(model_view(state.pages)), render(kernel_view(snap))
            out.print(f"       model : {model}", markup=False)
            if kernel != model or verbose:
                out.print(f"       kernel: {kernel}", markup=False)
            out.print(f"       VmLck {snap.vmlck // 1024} kB", markup=False)

    return hook


def print_divergences(divergences: list[Divergence]) -> None:
    for d in divergences:
        out.print(f"\n[bold red]{d.kind}[/] at step {d.step}: {d.title}")
        out.print(f"  expected: {d.expected}", markup=False)
        out.print(f"  observed: {d.observed}", markup=False)


def print_report(report: Report) -> None:
    ran = len(report.steps)
    if report.divergences:
        print_divergences(report.divergences)
        left = len(report.program) - ran
        if left > 0:
            out.print(f"\n(stopped at the first divergence; {left} later steps not run)")
    else:
        out.print(f"\nno divergence in {ran} steps")


def print_progress(p: Progress) -> None:
    secs = max(p.elapsed, 1e-9)
    out.print(
        f"[{p.elapsed:6.0f}s] {p.programs:>8,} programs ({p.programs / secs:,.0f}/s)  "
        f"{p.steps:>9,} steps ({p.steps / secs:,.0f}/s)  "
        f"{len(p.buckets)} buckets ({p.new_buckets} new)",
        markup=False,
    )


def print_summary(p: Progress, store: Store) -> None:
    secs = max(p.elapsed, 1e-9)
    out.print(f"\ncampaign {p.campaign_id} {p.status}: {p.elapsed:.0f} s, {p.programs:,} programs "
              f"({p.programs / secs:,.0f}/s), {p.steps:,} checked steps ({p.steps / secs:,.0f}/s)",
              markup=False)
    out.print(f"database: {store.url}", markup=False)
    row = store.campaign(p.campaign_id)
    features = row.options.get("features")
    names = {f.name for f in fields(Features)}
    known = (Features(**{k: v for k, v in features.items() if k in names})
             if isinstance(features, dict) else probe())
    where = "" if row.options.get("kernel", "host") == "host" else f" in {row.options['kernel']}"
    out.print(f"kernel: {known.summary()}{where}", markup=False)
    for warning in p.warnings:
        out.print(f"warning: {warning}", markup=False)
    if p.unsupported:
        out.print(f"warning: {p.unsupported} programs skipped: the model refused a call in them "
                  "(a call it does not predict on this kernel, such as a read of a present "
                  "write-only page under UML)", markup=False)
    if not p.buckets:
        out.print("no divergence found")
        return
    out.print(f"{len(p.buckets)} divergence buckets ({p.new_buckets} new):", markup=False)
    for bid, (title, new) in sorted(p.buckets.items()):
        flag = "new " if new else "    "
        out.print(f"  #{bid:<5} {flag} x{p.hits.get(bid, 0):<5} {title}", markup=False)
    out.print("see them with: mmfuzz triage list; mmfuzz triage show ID")
