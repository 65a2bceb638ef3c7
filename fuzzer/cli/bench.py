"""`mmfuzz bench`: the speed figures the project is held to."""

from __future__ import annotations

from typing import Annotated

import typer

from fuzzer.cli.common import out, user_errors

app = typer.Typer(help="Benchmarks.", no_args_is_help=True)


@app.command("throughput")
def throughput_cmd(
    programs: Annotated[int, typer.Option("--programs", help="Programs in the workload.",
                                          min=1)] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated workload.")] = 1,
    cpu: Annotated[int, typer.Option("--cpu", help="CPU for the worker and its children.")] = 0,
) -> None:
    """Programs/s and checked steps/s of one worker over a fixed generated workload.

    Example: mmfuzz bench throughput --programs 2000
    """
    from fuzzer.campaign.bench import throughput
    from fuzzer.executor import executor_path
    from fuzzer.trace import Supervisor

    with user_errors():
        r = throughput(Supervisor(executor_path(), cpu=cpu), programs, seed)
    out.print(f"workload: {r.programs} generated programs (seed {seed}), {r.steps} steps, "
              f"{r.programs and r.steps / r.programs:.1f} steps/program", markup=False)
    out.print(f"one worker: {r.programs_per_s:,.0f} programs/s, "
              f"{r.steps_per_s:,.0f} checked steps/s ({r.seconds:.2f} s)", markup=False)
    share = r.model_seconds / r.seconds if r.seconds else 0.0
    out.print(f"Python side alone (generate + model + oracle): {r.model_seconds:.2f} s, "
              f"{share:.0%} of the run", markup=False)
    if r.divergent_programs:
        out.print(f"note: {r.divergent_programs} programs diverged (see `mmfuzz exec`)",
                  markup=False)
