"""The text of one checked program: each step as it runs, then the divergences.

What `mmfuzz exec` prints, on the host (to the CLI's console) and in a guest
(to a console whose file is the channel to the host): so it lives below both.
"""

from __future__ import annotations

from rich.console import Console

from fuzzer.check import Report, StepHook, StepReport
from fuzzer.model import State
from fuzzer.observe import Snapshot
from fuzzer.oracle import Divergence, kernel_view, model_view, render, signal_text, value_text
from fuzzer.prog import format_call


def _outcome(rep: StepReport) -> str:
    if rep.call.name == "touch":
        return signal_text(rep.signal)
    if rep.call.name == "exit":
        return "exited"
    return "= " + value_text(rep.call, rep.ret)


def step_printer(verbose: bool, out: Console) -> StepHook:
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


def print_divergences(divergences: list[Divergence], out: Console) -> None:
    for d in divergences:
        out.print(f"\n[bold red]{d.kind}[/] at step {d.step}: {d.title}")
        out.print(f"  expected: {d.expected}", markup=False)
        out.print(f"  observed: {d.observed}", markup=False)


def print_report(report: Report, out: Console) -> None:
    ran = len(report.steps)
    if report.divergences:
        print_divergences(report.divergences, out)
        left = len(report.program) - ran
        if left > 0:
            out.print(f"\n(stopped at the first divergence; {left} later steps not run)")
    else:
        out.print(f"\nno divergence in {ran} steps")
