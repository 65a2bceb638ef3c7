"""The reference model: intended kernel semantics, one transition per call (pure, no I/O)."""

from fuzzer.model.calls import step
from fuzzer.model.pages import OUTSIDE, Prediction, Unsupported
from fuzzer.model.state import ABSENT, ANON, RESIDENT, SHMEM, ZERO, Attrs, Page, State, prot_text
from fuzzer.model.world import SUPPORTED, World, covers

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
    "World",
    "covers",
    "prot_text",
    "step",
]
