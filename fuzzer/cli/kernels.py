"""`mmfuzz kernels`: the kernel builds in the database and what tells two of them apart
(the default), `kernels build` to build a User-Mode Linux kernel to test, and
`kernels boot` to see whether one boots here (and why not)."""

from __future__ import annotations

import glob
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from fuzzer.campaign.target import UmlTarget
from fuzzer.cli.common import (
    DEFAULT_DB,
    DbOption,
    GuestMemOption,
    err,
    fail,
    kernel_of,
    out,
    user_errors,
)
from fuzzer.kernel import GUEST_MEM
from fuzzer.kernel.build import build, cache_dir
from fuzzer.kernel.releases import builds, only_on, pick
from fuzzer.store import open_store
from fuzzer.store.identity import AmbiguousKernel


class _Kernels(TyperGroup):
    """`mmfuzz kernels [BUILD BASE]` lists or compares unless its first word is a command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["releases", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_Kernels,
    help="Kernel builds in the database (the default: `mmfuzz kernels [BUILD BASE]`), "
    "and User-Mode Linux kernels to test: build one, boot one.",
    add_completion=False,
)


@app.command("releases")
def kernels_cmd(
    release: Annotated[str | None, typer.Argument(
        help="A build to compare (e.g. a patched one): its name, a prefix of its binary "
        "hash, or its release when only one build has it.", show_default=False)] = None,
    base: Annotated[str | None, typer.Argument(
        help="The build to compare it with (e.g. its base).", show_default=False)] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """List the kernel builds seen in the database (name, release, binary hash, build
    string, campaigns, buckets); given two builds, list the buckets seen on one and
    never on the other.

    A build is its release, its `uname -v` and, for a UML binary, a hash of the
    binary; name one with `--kernel uml:PATH#NAME` when running a campaign.

    Example: mmfuzz kernels

    Example: mmfuzz kernels patched base

    Example: mmfuzz kernels 3f2a91 6.1.176
    """
    if (release is None) != (base is None):
        raise fail("give two builds to compare, or none to list them")
    with user_errors():
        store = open_store(db, create=False, read_only=True)
        known, seen = builds(store)
        if release is None or base is None:
            if not known:
                out.print("no campaigns yet", markup=False)
                return
            out.print(f"{'name':<20} {'release':<24} {'binary':<12} {'campaigns':>9} "
                      f"{'programs':>10} {'buckets':>7}  build / where", markup=False)
            for b in known:
                k = b.kernel
                where = ", ".join(b.targets)
                build = k.build or "-"
                out.print(f"{k.name or '-':<20} {k.release:<24} {k.binary or '-':<12} "
                          f"{b.campaigns:>9} {b.programs:>10,} {b.buckets:>7}  {build}"
                          f"{'  (' + where + ')' if where else ''}", markup=False)
            return
        try:
            a, z = pick(release, [b.kernel for b in known]), pick(base, [b.kernel for b in known])
        except AmbiguousKernel as e:
            raise fail(f"{e} in {store.url}") from None
        if a == z:
            raise fail(f"{release!r} and {base!r} are the same build: {a.describe()}")
        for x, y in ((a, z), (z, a)):
            rows = only_on(store, x, y, seen)
            out.print(f"on {x.label()}, never on {y.label()}: {len(rows)} bucket(s)",
                      markup=False)
            for row in rows:
                out.print(f"  #{row.id:<5} {row.status:<14} x{row.count:<5} {row.title}",
                          markup=False)


PatchOpt = Annotated[list[Path] | None, typer.Option(
    "--patch", help="A patch to apply (patch -p1) before building; repeat for a series.")]


@app.command("build")
def build_cmd(
    src: Annotated[Path, typer.Argument(
        help="A kernel source tree or tarball, e.g. /usr/src/linux-source-6.1.tar.xz.",
        show_default=False)],
    patch: PatchOpt = None,
    name: Annotated[str, typer.Option(
        "--name", help="Ends the kernel release (LOCALVERSION): 6.1.192-NAME.")] = "mmfuzz",
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Where to put the binary (default: the cache, as linux-RELEASE).",
        show_default=False)] = None,
    cache: Annotated[Path | None, typer.Option(
        "--cache", help="Build folder cache (default: $MMFUZZ_CACHE/kernels, else "
        "$XDG_CACHE_HOME/mmfuzz/kernels, else ~/.cache/mmfuzz/kernels).",
        show_default=False)] = None,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", help="Parallel compile jobs (default: one per CPU).", min=1,
        show_default=False)] = None,
) -> None:
    """Build a User-Mode Linux kernel to test, from a source tree or tarball; prints its path.

    The tree is extracted into the cache once per source and patch series (a rebuild is
    incremental), patched, configured from defconfig plus what the guests need, and built
    with `make ARCH=um linux`. Trees that fix the host's FP register (XSTATE) size at build
    time, which cannot boot on CPUs with AVX-512 and AMX, get the fix that reads it at boot.

    Example: mmfuzz kernels build /usr/src/linux-source-6.1.tar.xz --name hostfp

    Example: mmfuzz kernels build ../linux --patch fix.patch --name fix --out ./linux-fix
    """
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # the build's make and compilers are stopped with it

    signal.signal(signal.SIGTERM, stop)
    with user_errors():
        built = build(src, patch or [], name, out_path, cache, jobs,
                      say=lambda line: err.print(f"mmfuzz: {line}", markup=False))
        minutes, seconds = divmod(round(built.seconds), 60)
        err.print(f"mmfuzz: built {built.release} in {minutes} min {seconds} s"
                  f"{' (with the host XSTATE size fix)' if built.fixed_xstate else ''}; "
                  f"run it with --kernel uml:{built.path}", markup=False)
        out.print(str(built.path), markup=False)


@app.command("boot")
def boot_cmd(
    kernel: Annotated[str, typer.Argument(
        help="The kernel to boot: uml:PATH.", show_default=False)] = "uml:/usr/bin/linux",
    guest_mem: GuestMemOption = GUEST_MEM,
) -> None:
    """Boot a User-Mode Linux guest once and print its release and boot time; if it cannot
    boot on this host, say why and what to do (exit status 2).

    Example: mmfuzz kernels boot uml:/usr/bin/linux
    """
    with user_errors():
        target = kernel_of(kernel, guest_mem)
        if target.uml is None:
            raise fail("kernels boot: give a User-Mode Linux kernel, uml:PATH")
        start = time.monotonic()
        build, _ = UmlTarget(target).probe()
        out.print(f"{target}: booted {build.release} ({build.build}) in "
                  f"{time.monotonic() - start:.1f} s",
                  markup=False)


def suggested_source() -> str:
    """The source to suggest building from: a Debian linux-source tarball if one is here."""
    found = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
    return found[-1] if found else "/usr/src/linux-source-6.1.tar.xz"


__all__ = ["app", "cache_dir", "suggested_source"]
