"""`mmfuzz triage`: list, inspect, label and count the divergence buckets a campaign stored.

Each command is a thin shell over the Store: it parses options, makes the call and
prints the answer, as Rich text for people or as plain JSON (`--json`) for programs.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

from fuzzer.cli.common import DEFAULT_DB, DbOption, fail, out, user_errors
from fuzzer.cli.variants import print_variants, variants_json
from fuzzer.store import SORTS, STATUSES, BucketDetail, BucketRow, SampleRow, Store, open_store

app = typer.Typer(help="List, inspect and label divergence buckets.", no_args_is_help=True)

IdArg = Annotated[int, typer.Argument(metavar="ID", help="Bucket id from `triage list`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_AGE = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SHOWN_SAMPLES = 20  # `show` lists the latest samples; --json has them all


@app.command("list")
def list_cmd(
    status: Annotated[list[str] | None, typer.Option(
        "--status", help=f"Only this status (repeatable): {', '.join(STATUSES)}.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    kernel: Annotated[str | None, typer.Option(
        "--kernel", help="Only buckets seen on this kernel release.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only buckets seen since a date (2026-11-01) or an age (7d, 3h).")] = None,
    all_: Annotated[bool, typer.Option(
        "--all", help="Labelled buckets too (the default lists new and regression).")] = False,
    sort: Annotated[str, typer.Option("--sort", help=f"One of: {', '.join(SORTS)}.")] = "last_seen",
    as_json: JsonOpt = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """List the buckets still to triage (new and regression), most recently seen first.

    Labelled buckets leave this list; --all or --status brings them back.

    Example: mmfuzz triage list --since 7d --sort count
    """
    with user_errors():
        statuses = [s.strip() for arg in status or [] for s in arg.split(",") if s.strip()]
        rows = open_store(db, create=False, read_only=True).buckets(
            status=statuses or None, kind=kind, kernel=kernel, since=_since(since),
            include_labelled=all_, sort=sort,
        )
    if as_json:
        _echo_json([asdict(b) for b in rows])
    elif not rows:
        hint = "" if all_ or statuses else " to triage (--all lists labelled ones too)"
        out.print(f"no divergence buckets{hint}")
    else:
        _print_table(rows)


@app.command("show")
def show_cmd(bucket_id: IdArg, as_json: JsonOpt = False, db: DbOption = DEFAULT_DB) -> None:
    """Show one bucket: label, program, diverging step, expected, observed, minimized program,
    which of its variants trigger it (`mmfuzz variants`), and each sample's kernel release
    and probed features.

    Example: mmfuzz triage show 3
    """
    with user_errors():
        store = open_store(db, create=False, read_only=True)
        b = store.bucket(bucket_id)
        original = _duplicated(store, b)
        variants = store.variants(bucket_id)
    if as_json:
        _echo_json({**b.to_json(), **variants_json(variants)})
        return
    _print_label(b, original)
    if not b.samples:
        out.print("no samples stored")
        return
    s = b.samples[0]
    out.print(f"\nfirst sample (kernel {s.kernel}, program {s.program_hash}), "
              f"diverging at step {s.step}:", markup=False)
    _print_program(s.program_text, s.step)
    out.print(f"\n  expected: {s.expected}", markup=False)
    out.print(f"  observed: {s.observed}", markup=False)
    for other in s.symptoms:
        out.print(f"  also:     {other}", markup=False)
    _print_injections(s, b.samples)
    if b.minimized_program_text is not None and b.minimized_step is not None:
        calls = f" ({b.original_calls} → {b.minimized_calls} calls)" if b.original_calls else ""
        out.print(f"\nminimized program{calls}, diverging at step {b.minimized_step}:",
                  markup=False)
        _print_program(b.minimized_program_text, b.minimized_step)
    print_variants(variants)
    kernels = sorted({x.kernel for x in b.samples})
    out.print(f"\n{len(b.samples)} samples stored; kernels: {', '.join(kernels)}", markup=False)
    _print_samples(b.samples)


@app.command("label")
def label_cmd(
    bucket_id: IdArg,
    status: Annotated[str, typer.Argument(
        metavar="STATUS", help=f"One of: {', '.join(STATUSES)}.", show_default=False)],
    note: Annotated[str | None, typer.Option(
        "--note", help="Why (replaces the old note; \"\" clears it).")] = None,
    duplicate_of: Annotated[int | None, typer.Option(
        "--duplicate-of", metavar="OTHER", help="With STATUS duplicate: the bucket it repeats.")
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Label a bucket; labelled buckets leave the default `triage list`.

    A later sighting keeps the label, except that a "fixed" bucket seen again
    on a real kernel becomes "regression".

    Example: mmfuzz triage label 3 kernel-bug --note "reported upstream"
    """
    with user_errors():
        b = open_store(db, create=False).label(
            bucket_id, status, note=note, duplicate_of=duplicate_of)
    dup = f" of #{b.duplicate_of}" if b.duplicate_of is not None else ""
    out.print(f"#{b.id} {b.title}", markup=False)
    out.print(f"status: {b.status}{dup}", markup=False)
    if b.note:
        out.print(f"note: {b.note}", markup=False)


@app.command("stats")
def stats_cmd(as_json: JsonOpt = False, db: DbOption = DEFAULT_DB) -> None:
    """Count the buckets by status, kind and kernel, and the campaigns' work.

    Example: mmfuzz triage stats --json
    """
    with user_errors():
        stats = open_store(db, create=False, read_only=True).stats()
    if as_json:
        _echo_json(stats)
        return

    def counts(key: str) -> str:
        value = stats[key]
        assert isinstance(value, dict)
        return ", ".join(f"{k} {n}" for k, n in value.items()) or "-"

    out.print(f"{stats['buckets']} buckets, {stats['samples']} samples "
              f"({stats['injected_samples']} seen under injection)", markup=False)
    out.print(f"status: {counts('by_status')}", markup=False)
    out.print(f"kind:   {counts('by_kind')}", markup=False)
    out.print(f"kernel: {counts('by_kernel')}", markup=False)
    out.print(f"{stats['campaigns']} campaigns ran {stats['programs']:,} programs, "
              f"{stats['steps']:,} steps", markup=False)


# -- parsing -----------------------------------------------------------------


def _since(value: str | None) -> datetime | None:
    """A date, a date and time (UTC unless it says otherwise) or an age like 7d, 3h, 30m, 2w."""
    if value is None:
        return None
    age = _AGE.fullmatch(value.strip())
    if age:
        return datetime.now(UTC) - timedelta(**{_UNITS[age[2]]: int(age[1])})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"--since {value!r}: give a date (2026-11-01), a time (2026-11-01T12:00) "
                   "or an age (30m, 3h, 7d, 2w)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- printing ----------------------------------------------------------------


def _echo_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, default=_iso))


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _reliability(b: BucketRow) -> str:
    return "-" if b.reliability_runs is None else f"{b.reliability_hits}/{b.reliability_runs}"


def _calls(b: BucketRow) -> str:
    return "-" if b.minimized_calls is None else f"{b.original_calls}→{b.minimized_calls}"


def _print_table(rows: list[BucketRow]) -> None:
    """A table whose titles are never cut: other columns wrap, and if even that is too
    narrow for the terminal, the table is printed wider and the terminal wraps lines."""
    table = Table(box=None, pad_edge=False)
    for header in ("id", "kind", "count", "runs", "calls", "first seen", "last seen", "status",
                   "dup of"):
        table.add_column(header, overflow="fold")
    table.add_column("title", no_wrap=True, min_width=max(len(b.title) for b in rows))
    for b in rows:
        cells = (str(b.id), b.kind, str(b.count), _reliability(b), _calls(b),
                 f"{b.first_seen:%Y-%m-%d %H:%M}", f"{b.last_seen:%Y-%m-%d %H:%M}", b.status,
                 "-" if b.duplicate_of is None else f"#{b.duplicate_of}", b.title)
        table.add_row(*(Text(c) for c in cells))  # Text: a "[" in a title is not markup
    need = Measurement.get(out, out.options.update_width(1_000_000), table).minimum
    options = out.options.update_width(max(out.width, need))
    out.print(Segments(out.render(table, options)))


def _print_label(b: BucketDetail, original: BucketRow | None) -> None:
    out.print(Text(f"#{b.id} {b.title}", style="bold"))
    out.print(f"kind {b.kind}, status {b.status}, seen {b.count} times, "
              f"first {b.first_seen:%Y-%m-%d %H:%M:%S}, last {b.last_seen:%Y-%m-%d %H:%M:%S}",
              markup=False)
    if b.duplicate_of is not None:
        title = f": {original.title}" if original else ""
        out.print(f"duplicate of #{b.duplicate_of}{title}", markup=False)
    if b.note:
        out.print(f"note: {b.note}", markup=False)
    if b.reliability_runs is None:
        out.print(f"reliability: not measured (mmfuzz repro {b.id})", markup=False)
    else:
        out.print(f"reliability: {_reliability(b)} re-runs diverged again", markup=False)
    if b.reliabilities:
        out.print("reliability per kernel build (mmfuzz repro --kernel):", markup=False)
        for r in b.reliabilities:
            out.print(f"  {r.hits}/{r.runs}  {r.kernel_id.describe()}  "
                      f"({r.at:%Y-%m-%d %H:%M:%S})", markup=False)


def _print_program(text: str, step: int) -> None:
    for i, line in enumerate(text.splitlines()):
        marker = ">>" if i == step else "  "
        out.print(f" {marker} {i:3}  {line}", markup=False)


def _print_injections(first: SampleRow, samples: list[SampleRow]) -> None:
    if first.injections:
        out.print(f"\nseen under injection: {','.join(first.injections)} — an emulated bug, "
                  "not the kernel's", markup=False)
    injected = sum(1 for s in samples if s.injections)
    if injected and (injected > 1 or not first.injections):
        out.print(f"{injected} of {len(samples)} samples were seen under injection",
                  markup=False)


def _features(s: SampleRow) -> str:
    """The sample's probed features for people: what its kernel lacked, if anything."""
    if s.features is None:
        return "features not recorded"
    missing = [k for k, v in s.features.items() if v is False]
    return f"without {', '.join(missing)}" if missing else "all features"


def _print_samples(samples: list[SampleRow]) -> None:
    """One line per sample (the latest SHOWN_SAMPLES): when, where, on which kernel.

    Plain columns, never cut: a narrow terminal wraps the lines instead."""
    shown = samples[-SHOWN_SAMPLES:]
    injected = any(s.injections for s in shown)
    rows = [["seen", "campaign", "step", "program", "kernel", "features"]
            + (["injections"] if injected else [])]
    for s in shown:
        rows.append([f"{s.created:%Y-%m-%d %H:%M:%S}",
                     "-" if s.campaign_id is None else str(s.campaign_id), str(s.step),
                     s.program_hash, s.kernel_id.label(), _features(s)]
                    + ([",".join(s.injections) or "-"] if injected else []))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        out.print("  " + line.rstrip(), markup=False, crop=False)
    if len(samples) > len(shown):
        out.print(f"  ({len(samples) - len(shown)} earlier samples not shown; --json lists all)",
                  markup=False)


def _duplicated(store: Store, b: BucketRow) -> BucketRow | None:
    """The bucket b duplicates, if it has one."""
    return store.bucket(b.duplicate_of) if b.duplicate_of is not None else None
