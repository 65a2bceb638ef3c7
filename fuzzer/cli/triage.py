"""`mmfuzz triage`: look at the divergence buckets a campaign stored."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fuzzer.cli.common import DEFAULT_DB, DbOption, out, user_errors
from fuzzer.store import open_store

app = typer.Typer(help="List and inspect divergence buckets.", no_args_is_help=True)


@app.command("list")
def list_cmd(db: DbOption = DEFAULT_DB) -> None:
    """List the buckets, most recently seen first.

    Example: mmfuzz triage list --db sqlite:///db/mmfuzz.sqlite
    """
    with user_errors():
        rows = open_store(db, create=False).buckets()
    if not rows:
        out.print("no divergence buckets")
        return
    table = Table("id", "kind", "count", "first seen", "last seen", "status", "title",
                  box=None, pad_edge=False)
    for b in rows:
        table.add_row(str(b.id), b.kind, str(b.count), f"{b.first_seen:%Y-%m-%d %H:%M}",
                      f"{b.last_seen:%Y-%m-%d %H:%M}", b.status, b.title)
    out.print(table)


@app.command("show")
def show_cmd(
    bucket_id: Annotated[int, typer.Argument(metavar="ID", help="Bucket id from `triage list`.")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Show one bucket: its program, the diverging step, expected and observed.

    Example: mmfuzz triage show 3
    """
    with user_errors():
        b = open_store(db, create=False).bucket(bucket_id)
    out.print(f"[bold]#{b.id} {b.title}[/]")
    out.print(f"kind {b.kind}, status {b.status}, seen {b.count} times, "
              f"first {b.first_seen:%Y-%m-%d %H:%M:%S}, last {b.last_seen:%Y-%m-%d %H:%M:%S}",
              markup=False)
    if b.note:
        out.print(f"note: {b.note}", markup=False)
    if not b.samples:
        out.print("no samples stored")
        return
    s = b.samples[0]
    out.print(f"\nfirst sample (kernel {s.kernel}, program {s.program_hash}), "
              f"diverging at step {s.step}:", markup=False)
    for i, line in enumerate(s.program_text.splitlines()):
        marker = ">>" if i == s.step else "  "
        out.print(f" {marker} {i:3}  {line}", markup=False)
    out.print(f"\n  expected: {s.expected}", markup=False)
    out.print(f"  observed: {s.observed}", markup=False)
    kernels = sorted({x.kernel for x in b.samples})
    out.print(f"\n{len(b.samples)} samples stored; kernels: {', '.join(kernels)}", markup=False)
