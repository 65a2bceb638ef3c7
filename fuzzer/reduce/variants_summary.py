"""What a bucket's variants show, in lines a developer reads first (pure).

`summary_lines` says which flags the divergence needs and does not need, what it
triggers with and what not ("triggers with: every mapping kind, protection R and
RW"), which variants show another divergence at that step instead, and which
could not be decided (an earlier step diverged, or the model cannot predict
them). `detail_lines` gives every variant per axis. Both read stored rows or the
runner's results alike (`Outcome`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fuzzer.reduce.variants import AXES

_NOUNS = {"kind": "mapping kind", "prot": "protection", "lock": "locking", "pages": "size",
          "process": "process"}


class Outcome(Protocol):
    """What the summary reads of a run variant (a stored row, or the runner's result)."""

    @property
    def axis(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def base(self) -> bool: ...
    @property
    def step(self) -> int: ...
    @property
    def triggers(self) -> bool: ...
    @property
    def diverged_step(self) -> int | None: ...
    @property
    def diverged_kind(self) -> str: ...
    @property
    def title(self) -> str: ...


def state(o: Outcome) -> str:
    """yes (triggers), no (no divergence up to its step), other (another kind at its step),
    earlier (a divergence before its step hides it) or unsupported (the model cannot say)."""
    if o.triggers:
        return "yes"
    if o.title.startswith("unsupported"):
        return "unsupported"
    if o.diverged_step is None or o.diverged_step > o.step:
        return "no"
    return "other" if o.diverged_step == o.step else "earlier"


def _and(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _word(o: Outcome) -> str:
    """The variant's value as the summary names it: -FLAG, +FLAG or the value."""
    return {"drop": "-", "add": "+"}.get(o.axis, "") + o.value


def summary_lines(outcomes: Sequence[Outcome]) -> list[str]:
    """What a developer reads first: the flags the divergence needs and does not need, what
    it triggers with and what not ("triggers with: every mapping kind, protection R and RW"),
    what shows another divergence at that step instead, and what could not be decided."""
    drops = [o for o in outcomes if o.axis == "drop"]
    adds = [o for o in outcomes if o.axis == "add"]
    yes = [_word(o) for o in adds if o.triggers]
    no = [_word(o) for o in adds if state(o) == "no"]
    for axis, noun in _NOUNS.items():
        on = [o for o in outcomes if o.axis == axis]
        hits = [o.value for o in on if o.triggers]
        if hits and len(hits) == len(on) > 1:
            yes.append(f"every {noun}")
        elif hits:
            yes.append(f"{noun} {_and(hits)}")
        no += [o.value for o in on if state(o) == "no"]
    groups = (
        ("needs", [o.value for o in drops if state(o) == "no"]),
        ("does not need", [o.value for o in drops if o.triggers]),
        ("triggers with", yes),
        ("not with", no),
        ("diverges otherwise with", [f"{_word(o)} ({o.diverged_kind})" for o in outcomes
                                     if state(o) == "other"]),
        ("undecided (an earlier step diverges)",
         [_word(o) for o in outcomes if state(o) == "earlier"]),
        ("undecided (the model cannot predict it)",
         [_word(o) for o in outcomes if state(o) == "unsupported"]),
    )
    lines = [f"{head}: {', '.join(values)}" for head, values in groups if values]
    if any(o.base and not o.triggers for o in outcomes):
        lines.append("(the minimized program itself did not trigger this time: "
                     "the variants are unreliable)")
    return lines


def state_text(o: Outcome) -> str:
    """One variant's outcome in a word or three."""
    match state(o):
        case "other":
            return f"no, {o.diverged_kind} instead"
        case "earlier":
            return f"no, diverges earlier (step {o.diverged_step})"
        case word:
            return word


def detail_lines(outcomes: Sequence[Outcome]) -> list[str]:
    """Per axis, each variant's value and whether it triggers."""
    lines = []
    for axis in AXES:
        on = [o for o in outcomes if o.axis == axis]
        if on:
            cells = [f"{o.value}{' (base)' if o.base else ''} {state_text(o)}" for o in on]
            lines.append(f"{axis}: " + "; ".join(cells))
    return lines


__all__ = ["Outcome", "detail_lines", "state", "state_text", "summary_lines"]
