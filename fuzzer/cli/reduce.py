"""`mmfuzz minimize`, `repro` and `export`: making a bucket small, certain and portable.

Each command loads one bucket and calls one library function of
`fuzzer.reduce`. Without --inject, a bucket found under injections is re-run
under the same ones (they are stored with each sample). Without --kernel, a
bucket found in a User-Mode Linux guest is re-run in a guest of the same
binary (its campaign's `uml:PATH`, if that file still has the hash the
campaign recorded: otherwise a one-line error names the build and how to
pass it); a bucket found on a host runs on this host.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from fuzzer.campaign.target import Target, target_of
from fuzzer.cli.common import (
    DEFAULT_DB,
    DbOption,
    GuestMemOption,
    InjectOption,
    fail,
    kernel_of,
    out,
    user_errors,
)
from fuzzer.kernel import GUEST_MEM, HOST, Kernel, KernelError
from fuzzer.prog import Program
from fuzzer.reduce.crun import build_c
from fuzzer.reduce.export import FORMATS, export_bucket, finding_of, write_bucket_folder
from fuzzer.reduce.finding import ExportError
from fuzzer.reduce.variants_run import variants_summary
from fuzzer.store import BucketDetail, Store, open_store
from fuzzer.store.identity import KernelId

IdArg = Annotated[int, typer.Argument(metavar="ID", help="Bucket id from `triage list`.")]
BucketKernelOption = Annotated[str | None, typer.Option(
    "--kernel", help="Kernel to run on: host, or uml:PATH[#NAME]. Default: the UML binary "
    "the bucket was found on (if it is still there, unchanged), else the host.",
    show_default=False)]


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


def found_on(store: Store, bucket: BucketDetail) -> tuple[KernelId | None, str]:
    """The build the bucket was first seen on, and the --kernel its campaign ran with
    ("host" when not known)."""
    if not bucket.samples:
        return None, "host"
    first = bucket.samples[0]
    target = "host"
    if first.campaign_id is not None:
        target = store.campaign(first.campaign_id).target
    return first.kernel_id, target


def bucket_kernel(spec: str | None, mem_mb: int, store: Store, bucket: BucketDetail) -> Kernel:
    """--kernel if given; else the UML binary the bucket was found on, when it is still
    there with the same hash; else the host (KernelError, one line, when that binary
    is gone or changed)."""
    if spec is not None:
        return kernel_of(spec, mem_mb)
    found, target = found_on(store, bucket)
    if target.split("#")[0] == "host" or found is None:
        return HOST
    how = (f"bucket {bucket.id} was found on {found.describe()} ({target}), "
           "which {}: pass --kernel uml:PATH (that build) or --kernel host")
    try:
        kernel = kernel_of(target, mem_mb)
    except KernelError:
        raise KernelError(how.format("is not there any more")) from None
    if found.binary is not None and kernel.binary() != found.binary:
        raise KernelError(how.format(f"is now another binary (hash {kernel.binary()})"))
    return replace(kernel, name=kernel.name or found.name)


def early(spec: str | None, mem_mb: int) -> None:
    """A bad --kernel fails before the database is read (one line)."""
    if spec is not None:
        kernel_of(spec, mem_mb)


def _not_here(store: Store, bucket: BucketDetail, specs: list[str], on: Target) -> str:
    found, target = found_on(store, bucket)
    hint = (f" (found on {found.describe()}, {target}: pass --kernel {target})"
            if found is not None and target != str(on.kernel) else "")
    return (f"bucket {bucket.id}'s program does not show its divergence{on.where}"
            f"{_under(specs)}{hint}: {bucket.title}")


def _on(target: Target) -> str:
    """What a command's first line says of a guest it ran in: nothing for the host."""
    return f" (on {target.kernel})" if target.named else ""


def _specs(bucket: BucketDetail, inject: list[str] | None) -> list[str]:
    """--inject if given, else the injections the bucket's first sample was found under."""
    if inject:
        return inject
    return list(bucket.samples[0].injections) if bucket.samples else []


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
    kernel: BucketKernelOption = None,
    guest_mem: GuestMemOption = GUEST_MEM,
) -> None:
    """Minimize a bucket's first program on the kernel and store the result.

    A candidate is kept only if it still shows the bucket's title and is
    strictly simpler (fewer calls, then smaller arguments).

    Example: mmfuzz minimize 3 --budget 200

    Example: mmfuzz minimize 3 --kernel uml:../linux/linux
    """
    with _errors():
        early(kernel, guest_mem)
        store, bucket = _load(db, bucket_id)
        target = target_of(bucket_kernel(kernel, guest_mem, store, bucket))
        finding = finding_of(bucket, minimized=False)
        specs = _specs(bucket, inject)
        done = target.minimize(store, bucket_id, bucket.title, finding.program, finding.step,
                               budget, specs)
        if done is None:
            raise fail(_not_here(store, bucket, specs, target), code=1)
        result, step = done
        duplicate_of = store.bucket(bucket_id).duplicate_of
    out.print(f"#{bucket_id} {bucket.title}{_under(specs)}{_on(target)}", markup=False)
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
    kernel: BucketKernelOption = None,
    guest_mem: GuestMemOption = GUEST_MEM,
) -> None:
    """Run a bucket's program N times and store how many runs show its divergence, as
    the figure of the kernel build it ran on (`triage show` lists each build's).

    Example: mmfuzz repro 3 --runs 20 --original

    Example: mmfuzz repro 3 --kernel uml:../linux/linux#base
    """
    with _errors():
        early(kernel, guest_mem)
        store, bucket = _load(db, bucket_id)
        target = target_of(bucket_kernel(kernel, guest_mem, store, bucket))
        finding = finding_of(bucket, minimized=minimized)
        specs = _specs(bucket, inject)
        hits, total, build = target.repro(finding.program, bucket.title, runs, specs)
        store.set_reliability(bucket_id, hits=hits, runs=total, kernel=build.release,
                              build=build.build, binary=build.binary, kernel_name=build.name)
    which = "minimized" if minimized and bucket.minimized_program_text else "original"
    out.print(f"{hits}/{total} runs show: {bucket.title}", markup=False)
    out.print(f"({which} program, {len(finding.program)} calls{_under(specs)}, on "
              f"{build.label()}{target.named})", markup=False)


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
    check: Annotated[bool, typer.Option(
        "--check", help="Build the C reproducer and run it on the kernel (--kernel); exit "
        "with its status: 1 reproduces, 0 does not.")] = False,
    kernel: BucketKernelOption = None,
    guest_mem: GuestMemOption = GUEST_MEM,
) -> None:
    """Export a bucket's reproducer: C source, program text, syzkaller text, or a
    plain-text report for a kernel mailing list (with the C reproducer).

    The minimized program is used when the bucket has one. The C program
    exits 1 when the divergence reproduces and 0 when it does not.

    Example: mmfuzz export 3 --format c -o repro.c --crashes crashes/

    Example: mmfuzz export 3 --format report -o report.txt

    Example: mmfuzz export 3 --check --kernel uml:../linux/linux
    """
    if fmt not in FORMATS:
        raise fail(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if check and fmt != "c":
        raise fail("--check runs the C reproducer: use it with --format c")
    if kernel is not None and not check:
        raise fail("--kernel is for --check (export itself runs nothing)")
    with _errors():
        early(kernel, guest_mem)
        store, bucket = _load(db, bucket_id, read_only=True)
        text = export_bucket(bucket, fmt, {c.kernel for c in store.campaigns()},
                             variants_summary(store, bucket_id))
        folder = write_bucket_folder(crashes, bucket) if crashes is not None else None
        if output is not None:
            output.write_text(text)
        if check:
            status = _check_c(text, target_of(bucket_kernel(kernel, guest_mem, store, bucket)))
    if check:
        raise typer.Exit(status)
    if folder is not None:
        out.print(f"wrote {folder}", markup=False)
    if output is not None:
        out.print(f"wrote {output}", markup=False)
    elif folder is None:
        typer.echo(text, nl=False)


C_TIMEOUT = 60.0  # seconds a C reproducer may run (a hang's reproducer stops itself at 5)


def _check_c(source: str, target: Target) -> int:
    """Build the C reproducer and run it on `target`; print what it said; its status."""
    with build_c(source) as binary:
        status, said = target.run_c(binary, C_TIMEOUT)
    out.print(said.rstrip(), markup=False)
    if status is None:
        raise fail(f"the C reproducer did not finish in {C_TIMEOUT:g} s on {target.kernel}", 1)
    meaning = {0: "does not reproduce", 1: "reproduces", 2: "could not read /proc"}
    out.print(f"repro.c on {target.kernel}: exit {status} "
              f"({meaning.get(status, 'failed')})", markup=False)
    return status
