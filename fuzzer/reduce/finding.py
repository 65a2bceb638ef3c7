"""What every export starts from: a `Finding`, and `ExportError` for one that cannot be exported.

A finding is a program with its diverging step, title, kind, and (when the
bucket's first sample describes this very program) expected and observed.
`export.finding_of` makes one from a stored bucket; tests and callers with a
program in hand build one directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.prog import Program


class ExportError(ValueError):
    """A finding that cannot be exported (unknown kind, step outside the program)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What an export needs: the program, where it diverges, and how."""

    program: Program
    step: int
    title: str
    kind: str
    expected: str = ""
    observed: str = ""


__all__ = ["ExportError", "Finding"]
