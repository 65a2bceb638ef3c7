"""Operation counts: which call, flags and outcome each checked step exercised (pure).

A step counts as keys (call, what, value): (call, "steps", "") once; for every
argument that is a choice rather than a number, (call, argument name, value)
once per flag set in it, named as the program text names it (PROT_READ,
MAP_PRIVATE, MADV_COLD, read; an unknown bit in hex, "0" or PROT_NONE for no
flag); and (call, "outcome", "ok" | errno name | signal). A step in which the
model mapped a large folio (mTHP, docs/SEMANTICS.md §19: a write fault or a
populate in a MADV_HUGEPAGE VMA) also counts (call, "folio", "mTHP"); one that mapped a
PMD (the huge arena, §22) counts (call, "folio", "PMD") for a huge page and
(call, "folio", "huge zero page") for the huge zero page. Everything
comes from the syscall table and the text format, so a call added there is
counted too.

The hot path (OpCounter.add, about 2,000 steps/s per worker) only bumps a
counter keyed by the step's choices; keys are expanded when the counts are
taken, twice a second.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from fuzzer.check.coverage import outcome as outcome  # a step's result, as coverage names it
from fuzzer.prog import Call
from fuzzer.prog.program import format_arg
from fuzzer.prog.syscalls import SYSCALLS, Kind
from fuzzer.store import OpCount

NUMBERS = frozenset({Kind.ADDR, Kind.LEN, Kind.INT})  # arguments not counted: not choices
STEPS, OUTCOME, FOLIO = "steps", "outcome", "folio"  # what, besides argument names
Key = tuple[str, str, str]  # (call, what, value)


def op_keys(call: Call, result: str, folio: str = "") -> tuple[Key, ...]:
    """The keys one step of `call` with outcome `result` adds one to (`folio`: what large
    mapping it made, StepReport.folio: MTHP, PMD, HUGE_ZERO or "")."""
    return _keys(call.name, _choices(call), result, folio)


def arg_values(kind: Kind, value: int) -> tuple[str, ...]:
    """How a choice argument counts: one name per flag set, unknown bits one by one."""
    try:
        text = format_arg(kind, value)
    except (KeyError, StopIteration):  # a kind the text format does not name (yet)
        return (f"{value:#x}",)
    if kind == Kind.MADV or ("|" not in text and not text.startswith("0x")):
        return (text,)
    names: list[str] = []
    for part in text.split("|"):
        if part.startswith("0x"):
            rest = int(part, 16)
            names += [f"{1 << b:#x}" for b in range(rest.bit_length()) if rest >> b & 1]
        else:
            names.append(part)
    return tuple(names)


class OpCounter:
    """Counts steps in memory; take() hands the totals over as OpCount rows."""

    def __init__(self) -> None:
        self._raw: Counter[tuple[str, tuple[int, ...], str, str]] = Counter()

    def add(self, call: Call, ret: int | None, signal: tuple[int, int] | None,
            folio: str = "") -> None:
        self._raw[call.name, _choices(call), outcome(ret, signal), folio] += 1

    def take(self) -> list[OpCount]:
        """The counts of everything counted since the last take(), sorted by key."""
        totals: Counter[Key] = Counter()
        for (name, choices, result, folio), n in self._raw.items():
            for key in _keys(name, choices, result, folio):
                totals[key] += n
        self._raw.clear()
        return [OpCount(c, w, v, n) for (c, w, v), n in sorted(totals.items())]


@cache
def _choice_args(name: str) -> tuple[tuple[int, str, Kind], ...]:
    """(position, argument name, kind) of the call's choice arguments."""
    return tuple((i, arg, kind) for i, (arg, kind) in enumerate(SYSCALLS[name].args)
                 if kind not in NUMBERS)


def _choices(call: Call) -> tuple[int, ...]:
    return tuple(call.args[i] for i, _, _ in _choice_args(call.name))


@lru_cache(maxsize=4096)  # fuzzed flag values are unbounded; the common ones repeat
def _keys(name: str, choices: tuple[int, ...], result: str, folio: str = "") -> tuple[Key, ...]:
    keys = [(name, STEPS, "")]
    for (_, arg, kind), value in zip(_choice_args(name), choices, strict=True):
        keys += [(name, arg, v) for v in arg_values(kind, value)]
    keys.append((name, OUTCOME, result))
    if folio:
        keys.append((name, FOLIO, folio))
    return tuple(keys)



@dataclass(frozen=True)
class CallOps:
    steps: int
    # argument (and "folio", for steps that mapped a large folio) -> value -> steps, most
    # frequent first
    args: dict[str, dict[str, int]]
    outcomes: dict[str, int]  # ok / errno / signal -> steps, most frequent first


# The memory-management syscalls whose success rate says whether a campaign's programs
# get past the argument checks to the semantics (not touches, forks or memfd set-up).
MM_CALLS = ("mmap", "munmap", "mprotect", "mremap", "madvise", "mlock", "mlock2", "munlock",
            "mlockall", "munlockall")


@dataclass(frozen=True)
class OpsSummary:
    steps: int
    calls: dict[str, CallOps]  # in syscall-table order, unknown calls after by name
    not_exercised: list[str]  # calls of the table no step ran

    def success(self) -> dict[str, tuple[int, int]]:
        """(steps that returned ok, steps) per mm call exercised, and over all of
        them as "all mm calls"."""
        rates = {name: (c.outcomes.get("ok", 0), c.steps) for name, c in self.calls.items()
                 if name in MM_CALLS}
        total = (sum(ok for ok, _ in rates.values()), sum(n for _, n in rates.values()))
        return {"all mm calls": total, **rates}


def summary(counts: Iterable[OpCount]) -> OpsSummary:
    """Stored counts grouped by call, for people and --json."""
    calls: dict[str, dict[str, Counter[str]]] = {}
    for c in counts:
        calls.setdefault(c.call, {}).setdefault(c.what, Counter())[c.value] += c.count
    order = {name: i for i, name in enumerate(SYSCALLS)}
    grouped: dict[str, CallOps] = {}
    for call in sorted(calls, key=lambda c: (order.get(c, len(order)), c)):
        whats = calls[call]
        spec = SYSCALLS.get(call)
        arg_order = {a: i for i, (a, _) in enumerate(spec.args)} if spec else {}
        args = sorted((w for w in whats if w not in (STEPS, OUTCOME)),
                      key=lambda w: (arg_order.get(w, len(arg_order)), w))
        grouped[call] = CallOps(
            steps=sum(whats.get(STEPS, Counter()).values()),
            args={a: _by_count(whats[a]) for a in args},
            outcomes=_by_count(whats.get(OUTCOME, Counter())),
        )
    return OpsSummary(steps=sum(c.steps for c in grouped.values()), calls=grouped,
                      not_exercised=[name for name in SYSCALLS if name not in grouped])


def _by_count(values: Counter[str]) -> dict[str, int]:
    return dict(sorted(values.items(), key=lambda kv: (-kv[1], kv[0])))
