"""`mmfuzz variants ID`: which flags, kinds and states a bucket's divergence needs.

Runs the variants of the bucket's minimized program (its first program if it has
none) on the kernel, stores them and prints them; `triage show` prints the
stored ones with `print_variants`.
"""

from __future__ import annotations

from fuzzer.campaign.target import target_of
from fuzzer.cli.common import (
    DEFAULT_DB,
    DbOption,
    GuestMemOption,
    InjectOption,
    fail,
    out,
)
from fuzzer.cli.reduce import (
    BucketKernelOption,
    IdArg,
    _errors,
    _load,
    _not_here,
    _on,
    _specs,
    _under,
    bucket_kernel,
    early,
)
from fuzzer.kernel import GUEST_MEM
from fuzzer.reduce.export import finding_of
from fuzzer.reduce.variants_summary import detail_lines, state, state_text, summary_lines
from fuzzer.store.variants import VariantValue


def variants_cmd(bucket_id: IdArg, inject: InjectOption = None, db: DbOption = DEFAULT_DB,
                 kernel: BucketKernelOption = None,
                 guest_mem: GuestMemOption = GUEST_MEM) -> None:
    """Run variants of a bucket's minimized program and store which trigger it.

    Each variant changes one thing: a flag of the diverging call or of the mmaps
    that made its range dropped or added, the mapping kind, the protection, the
    locking, the size, or the process (all of it in a forked child). It triggers
    when it diverges with the bucket's kind at the corresponding step.

    Example: mmfuzz variants 3

    Example: mmfuzz variants 3 --kernel uml:../linux/linux
    """
    with _errors():
        early(kernel, guest_mem)
        store, bucket = _load(db, bucket_id)
        target = target_of(bucket_kernel(kernel, guest_mem, store, bucket))
        finding = finding_of(bucket)
        specs = _specs(bucket, inject)
        values = target.variants(store, bucket_id, bucket.title, finding.program, finding.step,
                                 bucket.kind, specs)
        if values is None:
            raise fail(_not_here(store, bucket, specs, target), code=1)
    out.print(f"#{bucket_id} {bucket.title}{_under(specs)}{_on(target)}", markup=False)
    print_variants(values, programs=True)


def print_variants(values: list[VariantValue], *, programs: bool = False) -> None:
    """The summary first, then each axis; with programs, every variant that is not the
    program itself, with what it showed."""
    if not values:
        return
    out.print(f"\nvariants ({len(values)}):", markup=False)
    for line in summary_lines(values):
        out.print(f"  {line}", markup=False)
    for line in detail_lines(values):
        out.print(f"  {line}", markup=False)
    if not programs:
        return
    for v in values:
        if v.base:
            continue
        shown = f" ({v.title})" if v.title else ""
        out.print(f"\n  [{v.axis}] {v.label}: {state_text(v)}{shown}", markup=False)
        for i, line in enumerate(v.program_text.splitlines()):
            out.print(f"   {'>>' if i == v.step else '  '} {i:3}  {line}", markup=False)


def variants_json(values: list[VariantValue]) -> dict[str, object]:
    """The variants for `--json`: the summary lines and every variant."""
    return {"summary": summary_lines(values),
            "variants": [{"axis": v.axis, "value": v.value, "label": v.label, "base": v.base,
                          "program": v.program_text, "step": v.step, "triggers": v.triggers,
                          "state": state(v), "diverged_step": v.diverged_step,
                          "diverged_kind": v.diverged_kind, "title": v.title}
                         for v in values]}
