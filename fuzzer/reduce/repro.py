"""Reproduction on the kernel: does a program still show a bucket's divergence, and how often.

A bucket is its title, so "reproduces" means: some step of the run diverges
with exactly that title (not necessarily the same step: minimization moves it).
`still_diverges` is the predicate `minimize` is driven by; `reproduce` counts
hits over N runs, the reliability a bucket records.
"""

from __future__ import annotations

from fuzzer.check import check
from fuzzer.model import Unsupported
from fuzzer.prog import Program, ProgramError
from fuzzer.reduce.minimize import Predicate
from fuzzer.trace import Supervisor


def shows(supervisor: Supervisor, program: Program, title: str) -> bool:
    """One run: True if any divergence of the run has this title."""
    try:
        report = check(supervisor, program)
    except (Unsupported, ProgramError):
        return False  # a candidate the model cannot predict shows nothing
    return any(d.title == title for d in report.divergences)


def still_diverges(supervisor: Supervisor, title: str, tries: int = 1) -> Predicate:
    """The minimization predicate: a program fails if one of `tries` runs shows `title`."""

    def predicate(program: Program) -> bool:
        return any(shows(supervisor, program, title) for _ in range(tries))

    return predicate


def reproduce(program: Program, title: str, runs: int, supervisor: Supervisor) -> tuple[int, int]:
    """(hits, runs): how many of `runs` runs show a divergence titled `title`."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs}")
    hits = sum(1 for _ in range(runs) if shows(supervisor, program, title))
    return hits, runs


__all__ = ["reproduce", "shows", "still_diverges"]
