"""Reducing one bucket: minimize its program on the kernel and store the result.

Shared by `mmfuzz minimize` and by campaigns, which minimize every bucket they
open (docs/ARCHITECTURE.md §3: new bucket -> minimize -> crashes/<bucket>/), then
run the minimized program's variants with what is left of the budget.
"""

from __future__ import annotations

from pathlib import Path

from fuzzer.check import check
from fuzzer.prog import Program
from fuzzer.reduce.export import write_bucket_folder
from fuzzer.reduce.minimize import Result, minimize
from fuzzer.reduce.repro import still_diverges
from fuzzer.reduce.variants_run import vary_bucket
from fuzzer.store.ports import ReductionStore, WorkerStore
from fuzzer.trace import Supervisor


def minimize_bucket(
    store: ReductionStore,
    supervisor: Supervisor,
    bucket_id: int,
    title: str,
    program: Program,
    step: int,
    budget: int,
) -> tuple[Result, int]:
    """Minimize `program` (which shows `title` at `step`); store it; return it and its step."""
    result = minimize(program, still_diverges(supervisor, title), budget, step=step)
    found = [d for d in check(supervisor, result.program).divergences if d.title == title]
    new_step = found[0].step if found else len(result.program) - 1
    store.set_minimized(bucket_id, program_text=result.program.text(),
                        program_hash=result.program.hash, step=new_step,
                        original_calls=result.original_calls,
                        minimized_calls=result.minimized_calls,
                        expected=found[0].expected if found else None,
                        observed=found[0].observed if found else None)
    return result, new_step


def reduce_new_bucket(
    store: WorkerStore,
    supervisor: Supervisor,
    bucket_id: int,
    title: str,
    program: Program,
    step: int,
    budget: int,
    crashes: Path | None,
    kind: str = "",
) -> Path | None:
    """What a campaign does with a bucket it opened: minimize, write crashes/<bucket>/,
    then run the variants of the minimized program (diverging with `kind`) in the runs the
    budget has left. Only plain values cross `store`: a guest's worker passes its proxy."""
    result, new_step = minimize_bucket(store, supervisor, bucket_id, title, program, step,
                                       budget)
    folder = None if crashes is None else write_bucket_folder(crashes, store.bucket(bucket_id))
    left = budget - result.predicate_calls
    if kind and left > 0:
        vary_bucket(store, supervisor, bucket_id, result.program, new_step, kind, left)
    return folder
