"""Running a bucket's variants on the kernel, and keeping what they showed.

A variant *triggers* when its run diverges with the bucket's kind at the step
that corresponds to the diverging one (variants.py moves it when it inserts
calls). Each runs under the supervisor the bucket's programs run under, so it
has the same time budget as any program; a run that hangs or crashes is a
divergence like any other. The variant's own first title is kept too: the same
kind can come with a different title (another call's name in it).
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.check import check
from fuzzer.model import Unsupported
from fuzzer.prog import Program, ProgramError
from fuzzer.reduce.variants import Variant, make_variants
from fuzzer.reduce.variants_summary import summary_lines
from fuzzer.store import Store
from fuzzer.store.ports import ReductionStore
from fuzzer.store.variants import VariantValue
from fuzzer.trace import Supervisor


@dataclass(frozen=True, slots=True)
class Ran:
    """What one run of a variant's program showed."""

    triggers: bool
    step: int | None = None  # its first divergence (the matching one if it triggers) ...
    kind: str = ""
    title: str = ""  # ... or "unsupported: ..." when the model cannot predict the program


def run_variant(supervisor: Supervisor, variant: Variant, kind: str) -> Ran:
    """Run one variant: does it diverge with `kind` at its step?"""
    try:
        report = check(supervisor, variant.program)
    except (Unsupported, ProgramError) as e:
        return Ran(False, title=f"unsupported: {e}")
    hits = [d for d in report.divergences if d.step == variant.step and str(d.kind) == kind]
    shown = (hits or report.divergences)[:1]
    if not shown:
        return Ran(False)
    return Ran(bool(hits), shown[0].step, str(shown[0].kind), shown[0].title)


def run_variants(supervisor: Supervisor, variants: list[Variant], kind: str) -> list[VariantValue]:
    """Run each distinct program once (a base variant is the program itself, on every axis)."""
    seen: dict[tuple[str, int], Ran] = {}
    out = []
    for v in variants:
        key = (v.program.text(), v.step)
        if key not in seen:
            seen[key] = run_variant(supervisor, v, kind)
        ran = seen[key]
        out.append(VariantValue(axis=v.axis, value=v.value, label=v.label, base=v.base,
                                program_text=v.program.text(), program_hash=v.program.hash,
                                step=v.step, triggers=ran.triggers, diverged_step=ran.step,
                                diverged_kind=ran.kind, title=ran.title))
    return out


def distinct_programs(variants: list[Variant]) -> int:
    """How many runs `run_variants` makes of these variants."""
    return len({(v.program.text(), v.step) for v in variants})


def within(variants: list[Variant], runs: int) -> list[Variant]:
    """The variants, in order, whose programs fit in `runs` distinct runs."""
    kept: list[Variant] = []
    keys: set[tuple[str, int]] = set()
    for v in variants:
        key = (v.program.text(), v.step)
        if key not in keys and len(keys) >= runs:
            continue
        keys.add(key)
        kept.append(v)
    return kept


def vary_bucket(store: ReductionStore, supervisor: Supervisor, bucket_id: int, program: Program,
                step: int, kind: str, runs: int | None = None) -> list[VariantValue]:
    """Make the variants of `program` (diverging at `step`), run at most `runs` distinct
    programs of them (all if None), store the results and return them."""
    variants = make_variants(program, step)
    if runs is not None:
        variants = within(variants, runs)
    values = run_variants(supervisor, variants, kind)
    store.set_variants(bucket_id, values)
    return values


def variants_summary(store: Store, bucket_id: int) -> list[str]:
    """The stored variants of a bucket as the summary lines a report starts with
    (empty when none were run)."""
    return summary_lines(store.variants(bucket_id))


__all__ = ["Ran", "distinct_programs", "run_variant", "run_variants", "variants_summary",
           "vary_bucket", "within"]
