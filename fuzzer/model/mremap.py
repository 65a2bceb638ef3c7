"""mremap: SEMANTICS.md §6. Not modelled yet: every call raises Unsupported."""

from __future__ import annotations

from fuzzer.model.pages import Prediction, Unsupported
from fuzzer.model.state import State

MODELLED = False


def mremap(state: State, old: int, old_len: int, new_len: int, flags: int, new: int) -> Prediction:
    raise Unsupported("mremap")
