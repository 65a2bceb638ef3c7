"""`mmfuzz kernels`: the kernel builds in the database, and what tells two of them apart."""

from __future__ import annotations

from typing import Annotated

import typer

from fuzzer.cli.common import DEFAULT_DB, DbOption, fail, out, user_errors
from fuzzer.kernel.identity import AmbiguousKernel
from fuzzer.kernel.releases import builds, only_on, pick
from fuzzer.store import open_store


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
