"""Minimization: the smallest program a yes/no predicate still calls failing (pure, no I/O).

Driven only by `still_fails(program) -> bool`, whose answers are cached by
program hash: the minimizer never knows *why* a program fails, so the same
code shrinks a kernel divergence (the predicate runs the program) and a test's
made-up property (the predicate reads the text).

"Simpler" has one ordering, `simplicity(program)`: fewer calls first, then a
smaller total weight of arguments (fewer pages, no sub-page offsets, fewer flag
bits, addresses nearer @0, a read touch rather than a write). A candidate is
accepted only if it is strictly simpler *and* still fails, so every accepted
step makes progress and the result never depends on luck.

The passes run in a fixed order, and the whole sequence repeats until a round
changes nothing or the budget of predicate calls is spent:

1. drop the calls after the diverging step (it is frequently the case that
   everything after the step that diverged was not needed at all);
2. drop single calls, last first, then pairs (an mmap and the munmap that
   undoes it only go together);
3. shorten lengths (one page, half, one page less, no sub-page part);
4. drop flag bits one at a time (mapping, mlock2, mlockall and mremap flags);
5. simplify protections (fewer bits);
6. move addresses towards @0 (the whole program at once, then one at a time)
   and page-align them;
7. the rest: read instead of write touches, offset 0, fd -1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fuzzer.prog.program import WRAP_MIN, Call, Program, ProgramError, check_program
from fuzzer.prog.syscalls import PAGE, Kind

Predicate = Callable[[Program], bool]
FLAG_KINDS = (Kind.MAP, Kind.MLOCK, Kind.MCL, Kind.MREMAP)
WRAP_WEIGHT = 256  # a wrapping length weighs more than any length inside the 64-page arena


@dataclass(frozen=True, slots=True)
class Result:
    program: Program
    predicate_calls: int  # calls of still_fails actually made (cache hits are free)
    original_calls: int
    minimized_calls: int
    original_weight: int
    minimized_weight: int
    exhausted: bool  # the budget ran out before a round changed nothing


class _Budget(Exception):
    """The predicate budget is spent: stop where we are."""


# ------------------------------------------------------------ the ordering


def arg_weight(kind: Kind, value: int) -> int:
    """How complicated one argument is; 0 is as simple as it gets."""
    match kind:
        case Kind.ADDR:
            return value // PAGE + (1 if value % PAGE else 0)
        case Kind.LEN:
            if value >= WRAP_MIN:
                return WRAP_WEIGHT
            return (value + PAGE - 1) // PAGE + (1 if value % PAGE else 0)
        case Kind.PROT | Kind.MAP | Kind.MLOCK | Kind.MCL | Kind.MREMAP:
            return (value & ((1 << 64) - 1)).bit_count()
        case Kind.TOUCH:
            return value  # read (0) before write (1)
        case Kind.INT:
            return 0 if value in (0, -1) else 1  # fd -1, offset 0
        case _:
            return 0  # advice: a value, not a quantity


def weight(program: Program) -> int:
    return sum(
        arg_weight(kind, value)
        for call in program.calls
        for (_, kind), value in zip(call.syscall.args, call.args, strict=True)
    )


def simplicity(program: Program) -> tuple[int, int]:
    """The one ordering of "simpler": fewer calls, then a smaller total argument weight."""
    return len(program.calls), weight(program)


# ------------------------------------------------------------ the minimizer


class _Minimizer:
    def __init__(self, program: Program, still_fails: Predicate, budget: int) -> None:
        self.still_fails, self.budget = still_fails, budget
        self.cache: dict[str, bool] = {program.hash: True}  # the original fails, by contract
        self.calls = 0
        self.best = program  # the last accepted program: kept when the budget runs out

    def fails(self, candidate: Program) -> bool:
        key = candidate.hash
        if key not in self.cache:
            if self.calls >= self.budget:
                raise _Budget
            self.calls += 1
            self.cache[key] = self.still_fails(candidate)
        return self.cache[key]

    def better(self, current: Program, candidate: Program) -> bool:
        """Accept only a valid, strictly simpler program that still fails."""
        if not candidate.calls or simplicity(candidate) >= simplicity(current):
            return False
        try:
            check_program(candidate)  # the arena, and processes that exist when they call
        except ProgramError:
            return False
        if not self.fails(candidate):
            return False
        self.best = candidate
        return True

    def first(self, current: Program, candidates: Iterator[Program]) -> Program | None:
        for candidate in candidates:
            if self.better(current, candidate):
                return candidate
        return None


def minimize(
    program: Program, still_fails: Predicate, budget: int, step: int | None = None
) -> Result:
    """Shrink `program` (which fails) while `still_fails` holds, with at most `budget` calls.

    `step` is the index of the diverging call, when known: everything after it
    is dropped first. The original program is assumed to fail and is not run.
    """
    m = _Minimizer(program, still_fails, budget)
    exhausted = False
    try:
        current = _truncate(m, program, step)
        while True:
            before = current
            for pass_ in PASSES:
                current = pass_(m, current)
            if current == before:
                break
    except _Budget:
        exhausted = True
    best = m.best
    return Result(best, m.calls, len(program), len(best), weight(program), weight(best),
                  exhausted)


# ---------------------------------------------------------------- passes


def _truncate(m: _Minimizer, program: Program, step: int | None) -> Program:
    """Pass 1: drop the calls after the diverging step (or the shortest failing prefix)."""
    calls = program.calls
    if step is not None:
        if 0 <= step < len(calls) - 1 and m.better(program, Program(calls[: step + 1])):
            return Program(calls[: step + 1])
        return program
    # Unknown step: failing is monotone in the prefix length for a deterministic
    # checker that stops at the first divergence, so bisect for the shortest prefix.
    lo, hi = 1, len(calls)  # the prefix of length hi fails
    while lo < hi:
        mid = (lo + hi) // 2
        if m.better(Program(calls[:hi]), Program(calls[:mid])):
            hi = mid
        else:
            lo = mid + 1
    return Program(calls[:hi])


def _drop_calls(m: _Minimizer, program: Program) -> Program:
    """Pass 2: drop single calls (last first, until none can go), then pairs."""
    i = len(program.calls) - 1
    while i >= 0:
        calls = program.calls
        candidate = Program(calls[:i] + calls[i + 1 :])
        if m.better(program, candidate):
            program = candidate
        i -= 1
    while (fewer := m.first(program, _without_pairs(program))) is not None:
        program = fewer
    return program


def _without_pairs(program: Program) -> Iterator[Program]:
    """The program without two of its calls, pairs ending later first."""
    calls = program.calls
    for j in range(len(calls) - 1, 0, -1):
        for i in range(j - 1, -1, -1):
            yield Program(tuple(c for k, c in enumerate(calls) if k not in (i, j)))


def _with_arg(call: Call, index: int, value: int) -> Call:
    args = list(call.args)
    args[index] = value
    return Call(call.name, tuple(args), call.proc)


def _replace(program: Program, at: int, call: Call) -> Program:
    calls = list(program.calls)
    calls[at] = call
    return Program(tuple(calls))


def _per_arg(
    m: _Minimizer,
    program: Program,
    kinds: tuple[Kind, ...],
    candidates: Callable[[str, Kind, int], list[int]],
) -> Program:
    """Try, for each argument of the given kinds in program order, its candidate values
    in order (simplest first); keep the first that is accepted and go on from there."""
    for at in range(len(program.calls)):
        for index, (name, kind) in enumerate(program.calls[at].syscall.args):
            if kind not in kinds:
                continue
            progress = True
            while progress:
                progress = False
                call = program.calls[at]
                for value in candidates(name, kind, call.args[index]):
                    candidate = _replace(program, at, _with_arg(call, index, value))
                    if m.better(program, candidate):
                        program, progress = candidate, True
                        break
    return program


def _length_candidates(name: str, kind: Kind, value: int) -> list[int]:
    pages = (value + PAGE - 1) // PAGE if value < WRAP_MIN else 0
    out = [PAGE, (pages + 1) // 2 * PAGE, (pages - 1) * PAGE, value - value % PAGE]
    return [v for v in dict.fromkeys(out) if 0 < v != value]


def _shorten(m: _Minimizer, program: Program) -> Program:
    """Pass 3: fewer pages, no sub-page part."""
    return _per_arg(m, program, (Kind.LEN,), _length_candidates)


def _bits(value: int) -> list[int]:
    """Each set bit alone, highest first (unknown high bits are the likeliest noise)."""
    value &= (1 << 64) - 1
    return [1 << b for b in range(value.bit_length() - 1, -1, -1) if value >> b & 1]


def _drop_bit_candidates(name: str, kind: Kind, value: int) -> list[int]:
    return [(value & ((1 << 64) - 1)) & ~bit for bit in _bits(value)]


def _drop_flags(m: _Minimizer, program: Program) -> Program:
    """Pass 4: flag bits, one at a time."""
    return _per_arg(m, program, FLAG_KINDS, _drop_bit_candidates)


def _simplify_prot(m: _Minimizer, program: Program) -> Program:
    """Pass 5: protections with fewer bits (PROT_NONE is simplest)."""
    return _per_arg(m, program, (Kind.PROT,),
                    lambda n, k, v: [0, *_drop_bit_candidates(n, k, v)] if v else [])


def _shift(program: Program, pages: int) -> Program:
    """Every address of the program `pages` pages lower (relations between calls kept)."""
    calls = []
    for call in program.calls:
        args = tuple(value - pages * PAGE if kind == Kind.ADDR else value
                     for (_, kind), value in zip(call.syscall.args, call.args, strict=True))
        calls.append(Call(call.name, args, call.proc))
    return Program(tuple(calls))


def _address_candidates(name: str, kind: Kind, value: int) -> list[int]:
    page = value // PAGE
    out = [0, page // 2 * PAGE, (page - 1) * PAGE if page else 0, page * PAGE]
    return [v for v in dict.fromkeys(out) if v != value and v >= 0]


def _move_addresses(m: _Minimizer, program: Program) -> Program:
    """Pass 6: the whole program towards @0, then each address on its own (page-aligned)."""
    addrs = [value for call in program.calls
             for (_, kind), value in zip(call.syscall.args, call.args, strict=True)
             if kind == Kind.ADDR]
    low = min(addrs, default=0) // PAGE
    for pages in dict.fromkeys((low, low // 2, 1)):
        if 0 < pages <= low and m.better(program, _shift(program, pages)):
            program = _shift(program, pages)
            break
    return _per_arg(m, program, (Kind.ADDR,), _address_candidates)


def _rest_candidates(name: str, kind: Kind, value: int) -> list[int]:
    if kind == Kind.TOUCH:
        return [0] if value else []
    simplest = -1 if name == "fd" else 0
    return [simplest] if value != simplest else []


def _simplify_rest(m: _Minimizer, program: Program) -> Program:
    """Pass 7: read touches, offset 0, fd -1."""
    return _per_arg(m, program, (Kind.TOUCH, Kind.INT), _rest_candidates)


PASSES: tuple[Callable[[_Minimizer, Program], Program], ...] = (
    _drop_calls,
    _shorten,
    _drop_flags,
    _simplify_prot,
    _move_addresses,
    _simplify_rest,
)

__all__ = ["Predicate", "Result", "arg_weight", "minimize", "simplicity", "weight"]
