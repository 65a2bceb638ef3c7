"""`mmfuzz report --html DIR`: a campaign's or the whole database's report as static HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fuzzer.cli.common import DEFAULT_DB, DbOption, fail, out, user_errors
from fuzzer.report import gather, render
from fuzzer.store import open_store


def report_cmd(
    html: Annotated[Path, typer.Option(
        "--html", help="Folder to write the report in (index.html; created if missing).",
        show_default=False)],
    campaign: Annotated[int | None, typer.Option(
        "--campaign", help="One campaign (default: every campaign in the database).",
        show_default=False)] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Write a static HTML report: programs/s and buckets over time, coverage growth, each
    call's outcomes, the bucket table and the buckets by kernel. It works offline: one file,
    inline SVG, no script.

    Example: mmfuzz report --html report/

    Example: mmfuzz report --html report-3/ --campaign 3
    """
    with user_errors():
        store = open_store(db, create=False)
        page = render(gather(store, campaign))
    if html.exists() and not html.is_dir():
        raise fail(f"{html} is a file, not a folder")
    try:
        html.mkdir(parents=True, exist_ok=True)
        (html / "index.html").write_text(page, encoding="utf-8")
    except OSError as e:
        raise fail(f"cannot write the report in {html}: {e.strerror}") from e
    out.print(f"report: {html / 'index.html'}", markup=False)
