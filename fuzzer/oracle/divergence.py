"""Divergence: one difference the oracle found, as it is titled, stored and reported.

A module of its own, and never compiled (fuzzer/native.py): the store, the
tests and the guest's worker build these from plain values (a kind read back
as text), which a compiled class would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.oracle.kind import DivergenceKind


@dataclass(frozen=True, slots=True)
class Divergence:
    kind: DivergenceKind
    title: str  # the bucket key: stable and readable
    step: int
    expected: str
    observed: str
