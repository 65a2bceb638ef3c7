"""`mmfuzz minimize`, `repro` and `export`: making a bucket small, certain and portable."""

from __future__ import annotations

import typer

from fuzzer.cli.common import fail


def minimize_cmd(bucket_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Minimize a bucket's program (not implemented yet)."""
    raise fail("minimize is not implemented yet")


def repro_cmd(bucket_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Re-run a bucket's program (not implemented yet)."""
    raise fail("repro is not implemented yet")


def export_cmd(bucket_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Export a bucket's reproducer (not implemented yet)."""
    raise fail("export is not implemented yet")
