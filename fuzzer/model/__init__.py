"""The reference model: intended kernel semantics, one transition per call (pure, no I/O)."""

from fuzzer.model.calls import SUPPORTED, covers, step
from fuzzer.model.pages import OUTSIDE, Prediction, Unsupported
from fuzzer.model.state import ABSENT, ANON, RESIDENT, SHMEM, ZERO, Attrs, Page, State, prot_text

__all__ = [
    "ABSENT",
    "ANON",
    "OUTSIDE",
    "RESIDENT",
    "SHMEM",
    "SUPPORTED",
    "ZERO",
    "Attrs",
    "Page",
    "Prediction",
    "State",
    "Unsupported",
    "covers",
    "prot_text",
    "step",
]
