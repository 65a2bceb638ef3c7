"""madvise: SEMANTICS.md §7. Not modelled yet: every call raises Unsupported."""

from __future__ import annotations

from fuzzer.model.pages import Prediction, Unsupported
from fuzzer.model.state import State

MODELLED = False


def madvise(state: State, addr: int, length: int, advice: int) -> Prediction:
    raise Unsupported("madvise")
