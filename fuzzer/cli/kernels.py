"""`mmfuzz kernels`: the releases in the database, and what tells two of them apart."""

from __future__ import annotations

from typing import Annotated

import typer

from fuzzer.cli.common import DEFAULT_DB, DbOption, fail, out, user_errors
from fuzzer.kernel.releases import only_on, releases
from fuzzer.store import open_store


def kernels_cmd(
    release: Annotated[str | None, typer.Argument(
        help="A release to compare (e.g. a patched build).", show_default=False)] = None,
    base: Annotated[str | None, typer.Argument(
        help="The release to compare it with (e.g. its base).", show_default=False)] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """List the kernel releases seen in the database with their campaigns and bucket counts;
    given two releases, list the buckets seen on one and never on the other.

    Example: mmfuzz kernels

    Example: mmfuzz kernels 6.1.176-mypatch 6.1.176-base
    """
    if (release is None) != (base is None):
        raise fail("give two releases to compare, or none to list them")
    with user_errors():
        store = open_store(db, create=False, read_only=True)
        known = releases(store)
        if release is None or base is None:
            if not known:
                out.print("no campaigns yet", markup=False)
            out.print(f"{'release':<36} {'campaigns':>9} {'programs':>10} {'buckets':>8}",
                      markup=False)
            for r in known:
                out.print(f"{r.release:<36} {r.campaigns:>9} {r.programs:>10,} {r.buckets:>8}",
                          markup=False)
            return
        names = {r.release for r in known}
        for name in (release, base):
            if name not in names:
                raise fail(f"no campaign or sample from kernel {name!r} in {store.url} "
                           f"(known: {', '.join(sorted(names)) or 'none'})")
        for a, b in ((release, base), (base, release)):
            rows = only_on(store, a, b)
            out.print(f"on {a}, never on {b}: {len(rows)} bucket(s)", markup=False)
            for row in rows:
                out.print(f"  #{row.id:<5} {row.status:<14} x{row.count:<5} {row.title}",
                          markup=False)
