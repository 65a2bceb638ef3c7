"""`mmfuzz minimize`, `repro` and `export`: making a bucket small, certain and portable.

Each command loads one bucket and calls one library function of
`fuzzer.reduce`. Without --inject, a bucket found under injections is re-run
under the same ones (they are stored with each sample).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from fuzzer.cli.common import (
    DEFAULT_DB,
    DbOption,
    GuestMemOption,
    InjectOption,
    KernelOption,
    fail,
    injections,
    kernel_of,
    out,
    user_errors,
)
from fuzzer.executor import executor_path
from fuzzer.kernel import GUEST_MEM
from fuzzer.kernel.session import repro_in_guest
from fuzzer.prog import Program
from fuzzer.reduce.bucket import minimize_bucket
from fuzzer.reduce.export import FORMATS, export_bucket, finding_of, write_bucket_folder
from fuzzer.reduce.finding import ExportError
from fuzzer.reduce.repro import reproduce, shows
from fuzzer.reduce.variants_run import variants_summary
from fuzzer.store import BucketDetail, Store, open_store
from fuzzer.trace import Supervisor

IdArg = Annotated[int, typer.Argument(metavar="ID", help="Bucket id from `triage list`.")]


@contextmanager
def _errors() -> Iterator[None]:
    with user_errors():
        try:
            yield
        except ExportError as e:
            raise fail(str(e)) from None


def _load(db: str, bucket_id: int, *, read_only: bool = False) -> tuple[Store, BucketDetail]:
    store = open_store(db, create=False, read_only=read_only)
    return store, store.bucket(bucket_id)


def _specs(bucket: BucketDetail, inject: list[str] | None) -> list[str]:
    """--inject if given, else the injections the bucket's first sample was found under."""
    if inject:
        return inject
    return list(bucket.samples[0].injections) if bucket.samples else []


def _supervisor(specs: list[str]) -> Supervisor:
    return Supervisor(executor_path(), injections=injections(specs))


def _print_program(label: str, program: Program, step: int) -> None:
    out.print(f"{label} ({len(program)} calls, diverging at step {step}):", markup=False)
    for i, call in enumerate(program.text().splitlines()):
        out.print(f" {'>>' if i == step else '  '} {i:3}  {call}", markup=False)


def _under(specs: list[str]) -> str:
    return f" under {', '.join(specs)}" if specs else ""


def minimize_cmd(
    bucket_id: IdArg,
    budget: Annotated[int, typer.Option(
        "--budget", help="At most this many runs of candidate programs.", min=1)] = 300,
    inject: InjectOption = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Minimize a bucket's first program on the kernel and store the result.

    A candidate is kept only if it still shows the bucket's title and is
    strictly simpler (fewer calls, then smaller arguments).

    Example: mmfuzz minimize 3 --budget 200
    """
    with _errors():
        store, bucket = _load(db, bucket_id)
        finding = finding_of(bucket, minimized=False)
        specs = _specs(bucket, inject)
        with _supervisor(specs) as supervisor:
            if not shows(supervisor, finding.program, bucket.title):
                raise fail(f"bucket {bucket_id}'s program does not show its divergence here"
                           f"{_under(specs)}: {bucket.title}", code=1)
            result, step = minimize_bucket(store, supervisor, bucket_id, bucket.title,
                                           finding.program, finding.step, budget)
        duplicate_of = store.bucket(bucket_id).duplicate_of
    out.print(f"#{bucket_id} {bucket.title}{_under(specs)}", markup=False)
    _print_program("before", finding.program, finding.step)
    _print_program("after", result.program, step)
    spent = " (budget spent)" if result.exhausted else ""
    out.print(f"{result.original_calls} calls -> {result.minimized_calls}, argument weight "
              f"{result.original_weight} -> {result.minimized_weight}, "
              f"{result.predicate_calls} runs{spent}", markup=False)
    if duplicate_of is not None:
        out.print(f"duplicate of #{duplicate_of}: the same minimized program", markup=False)


def repro_cmd(
    bucket_id: IdArg,
    runs: Annotated[int, typer.Option("--runs", help="How many times to run it.", min=1)] = 10,
    inject: InjectOption = None,
    minimized: Annotated[bool, typer.Option(
        "--minimized/--original",
        help="Run the minimized program (when there is one) or the original.")] = True,
    db: DbOption = DEFAULT_DB,
    kernel: KernelOption = "host",
    guest_mem: GuestMemOption = GUEST_MEM,
) -> None:
    """Run a bucket's program N times and store how many runs show its divergence.

    Example: mmfuzz repro 3 --runs 20 --original

    Example: mmfuzz repro 3 --kernel uml:../linux/linux
    """
    with _errors():
        target = kernel_of(kernel, guest_mem)
        store, bucket = _load(db, bucket_id)
        finding = finding_of(bucket, minimized=minimized)
        specs = _specs(bucket, inject)
        if target.is_host:
            with _supervisor(specs) as supervisor:
                hits, total = reproduce(finding.program, bucket.title, runs, supervisor)
        else:
            injections(specs)  # fail early, here, on a bad injection
            hits, total = repro_in_guest(target, finding.program.text(), bucket.title, runs,
                                         specs)
        store.set_reliability(bucket_id, hits=hits, runs=total)
    which = "minimized" if minimized and bucket.minimized_program_text else "original"
    out.print(f"{hits}/{total} runs show: {bucket.title}", markup=False)
    on = "" if target.is_host else f", on {target}"
    out.print(f"({which} program, {len(finding.program)} calls{_under(specs)}{on})", markup=False)


def export_cmd(
    bucket_id: IdArg,
    fmt: Annotated[str, typer.Option(
        "--format", help=f"One of: {', '.join(FORMATS)}.", show_default=True)] = "c",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write here instead of standard output.")] = None,
    crashes: Annotated[Path | None, typer.Option(
        "--crashes", help="Also write the bucket's folder (original.prog, minimized.prog, "
        "repro.c, report.txt) under this directory.")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Export a bucket's reproducer: C source, program text, syzkaller text, or a
    plain-text report for a kernel mailing list (with the C reproducer).

    The minimized program is used when the bucket has one. The C program
    exits 1 when the divergence reproduces and 0 when it does not.

    Example: mmfuzz export 3 --format c -o repro.c --crashes crashes/

    Example: mmfuzz export 3 --format report -o report.txt
    """
    if fmt not in FORMATS:
        raise fail(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    with _errors():
        store, bucket = _load(db, bucket_id, read_only=True)
        text = export_bucket(bucket, fmt, {c.kernel for c in store.campaigns()},
                             variants_summary(store, bucket_id))
        folder = write_bucket_folder(crashes, bucket) if crashes is not None else None
        if output is not None:
            output.write_text(text)
    if folder is not None:
        out.print(f"wrote {folder}", markup=False)
    if output is not None:
        out.print(f"wrote {output}", markup=False)
    elif folder is None:
        typer.echo(text, nl=False)
