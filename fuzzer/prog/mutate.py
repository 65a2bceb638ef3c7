"""Mutation in program space: the search changes programs, not the bytes they decode from.

A campaign's corpus holds programs as text (the format of `text.py`), so what it
keeps means the same thing whatever the generator becomes. `mutate` makes one
change to a program, as syzkaller's prog/mutation.go does, and `splice` joins two:

- insert a call, chosen and given arguments from the shadow of what the calls
  before it mapped (generate.py), so that it lands on mappings and their edges;
- remove a call, or replace one with a new call;
- change one argument of a call to what the generator would give that call at
  that point (an address on a mapping, a length that ends inside it, flags valid
  for the call), by the process that makes it; an address or a length mostly
  changes with the other of its range;
- add a fork() and move some of the calls after it into the new child;
- splice: the head of one program and the tail of another.

Every result keeps the program rules (check_program): calls from processes that do
not exist at that point are dropped. The choices come from a `Source`, so a seed
gives the same mutation (pure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fuzzer.prog.choices import Source, chance, pick
from fuzzer.prog.generate import Generator
from fuzzer.prog.program import (
    MAX_CALLS,
    MAX_PROCS,
    Call,
    Processes,
    Program,
    ProgramError,
    check_call,
)

Covers = Callable[[Call], bool] | None
MUTATIONS = [(30, "insert"), (12, "remove"), (13, "replace"), (35, "argument"), (10, "fork")]
# Of changes to a range's address or length, the share that changes both, as the
# generator chooses them together (a length that ends in the mapping the new
# address is in); alone, a new address with the old length often runs into a hole.
RANGE_TOGETHER = 60
TRIES = 8  # a mutation that breaks the rules (or changes nothing) is drawn again


def mutate(program: Program, src: Source, calls: frozenset[str] | None = None,
           covers: Covers = None) -> Program:
    """One change to `program` (the program itself if no change keeps the rules)."""
    for _ in range(TRIES):
        kind = pick(src, MUTATIONS)
        candidate = _MUTATORS[kind](program, src, calls, covers)
        if candidate is not None and candidate != program:
            return candidate
    return program


def splice(head: Program, tail: Program, src: Source) -> Program:
    """The first calls of `head` and the last calls of `tail`; a call of a process that
    does not exist at its place is left out."""
    cut_head = src.ConsumeIntInRange(0, len(head))
    cut_tail = src.ConsumeIntInRange(0, max(0, len(tail) - 1))
    joined = keep_valid(head.calls[:cut_head] + tail.calls[cut_tail:])
    return joined if joined.calls else head


def keep_valid(calls: tuple[Call, ...]) -> Program:
    """`calls` less those that break the rules where they stand (a process that is not
    live, a fork past MAX_PROCS, the last live process exiting), at most MAX_CALLS."""
    procs, kept = Processes(), []
    for call in calls[:MAX_CALLS]:
        if call.name == "exit" and len(procs.live) < 2:
            continue
        try:
            check_call(call)
            procs.check(call)
        except ProgramError:
            continue
        kept.append(call)
    return Program(tuple(kept))


def _shadow(program: Program, index: int, src: Source, calls: frozenset[str] | None,
            covers: Covers) -> tuple[Generator, Processes, int]:
    """The generator's view at `index`: what the calls before it mapped and opened,
    the live processes, and the process that made the last call."""
    gen, procs, last = Generator(src, calls, covers), Processes(), 0
    for call in program.calls[:index]:
        gen.track(call)
        procs.check(call)
        last = call.proc
    return gen, procs, last


def _new_call(gen: Generator, procs: Processes, last: int, covers: Covers,
              name: str | None = None, proc: int | None = None) -> Call | None:
    """A new call (of `name`, by `proc` if given), its arguments from what the
    process that makes it has mapped."""
    gen.proc = gen.process(procs, last) if proc is None else proc
    call = gen.named(name) if name else gen.call()
    gen.pending.clear()  # a follow-up call (a touch of a new file mapping) is not kept
    if covers is not None and not covers(call):
        return None
    if (call.name == "fork" and procs.forks + 1 >= MAX_PROCS) or (
            call.name == "exit" and len(procs.live) < 2):
        return None  # it would be dropped, and the calls after it renumbered for nothing
    return replace(call, proc=gen.proc)


def _insert(program: Program, src: Source, calls: frozenset[str] | None,
            covers: Covers) -> Program | None:
    if len(program) >= MAX_CALLS:
        return None
    i = src.ConsumeIntInRange(0, len(program))
    gen, procs, last = _shadow(program, i, src, calls, covers)
    call = _new_call(gen, procs, last, covers)
    if call is None:
        return None
    return _valid((*program.calls[:i], call, *_renumber(program.calls[i:], call, procs)))


def _remove(program: Program, src: Source, calls: frozenset[str] | None,
            covers: Covers) -> Program | None:
    if len(program) < 2:
        return None
    i = src.ConsumeIntInRange(0, len(program) - 1)
    _, procs, _ = _shadow(program, i, src, calls, covers)
    return _valid((*program.calls[:i], *_after_removal(program.calls[i], program.calls[i + 1:],
                                                       procs)))


def _replace(program: Program, src: Source, calls: frozenset[str] | None,
             covers: Covers) -> Program | None:
    i = src.ConsumeIntInRange(0, len(program) - 1)
    gen, procs, last = _shadow(program, i, src, calls, covers)
    call = _new_call(gen, procs, last, covers)
    if call is None:
        return None
    rest = _after_removal(program.calls[i], program.calls[i + 1:], procs)
    return _valid((*program.calls[:i], call, *_renumber(rest, call, procs)))


def _argument(program: Program, src: Source, calls: frozenset[str] | None,
              covers: Covers) -> Program | None:
    """One argument of one call, as the generator would choose it at that point."""
    i = src.ConsumeIntInRange(0, len(program) - 1)
    old = program.calls[i]
    if not old.args:
        return None
    gen, procs, last = _shadow(program, i, src, calls, covers)
    fresh = _new_call(gen, procs, last, covers, name=old.name, proc=old.proc)
    if fresh is None:
        return None
    j = src.ConsumeIntInRange(0, len(old.args) - 1)
    together = _range_of(old, j)
    if together and chance(src, RANGE_TOGETHER):
        args = tuple(f if k in together else a
                     for k, (a, f) in enumerate(zip(old.args, fresh.args, strict=True)))
    else:
        args = (*old.args[:j], fresh.args[j], *old.args[j + 1:])
    call = replace(old, args=args)
    if covers is not None and not covers(call):
        return None
    return _valid((*program.calls[:i], call, *program.calls[i + 1:]))


def _range_of(call: Call, j: int) -> frozenset[int]:
    """The positions of the arguments of every range argument `j` is part of (an
    address and its length; for mremap's old address, both lengths and the new
    address too); empty if it is part of none."""
    return frozenset(k for r in call.syscall.ranges if j in r for k in r)


def _fork(program: Program, src: Source, calls: frozenset[str] | None,
          covers: Covers) -> Program | None:
    """A fork() at some point, by a live process; about half the calls that process
    makes after it move into the new child."""
    i = src.ConsumeIntInRange(0, len(program))
    _, procs, last = _shadow(program, i, src, calls, covers)
    if procs.forks + 1 >= MAX_PROCS or len(program) >= MAX_CALLS:
        return None
    parent = last if last in procs.live else min(procs.live)
    child = procs.forks + 1
    fork = Call("fork", (), parent)
    after = [replace(c, proc=child) if c.proc == parent and src.ConsumeIntInRange(0, 1) else c
             for c in _renumber(program.calls[i:], fork, procs)]
    return _valid((*program.calls[:i], fork, *after))


def _after_removal(removed: Call, calls: tuple[Call, ...],
                   procs: Processes) -> tuple[Call, ...]:
    """The calls after `removed`: if it was a fork, its child's calls go with it and the
    children of the forks after it are one number down."""
    if removed.name != "fork":
        return calls
    child = procs.forks + 1
    return tuple(_renamed(c, lambda n: n - 1 if n > child else n) for c in calls
                 if c.proc != child and _target(c) != child)


def _renumber(calls: tuple[Call, ...], new: Call, procs: Processes) -> tuple[Call, ...]:
    """The calls after `new`: if it is a fork, the n-th fork creates pn, so the
    children of the forks after it are one number up."""
    if new.name != "fork":
        return calls
    child = procs.forks + 1
    return tuple(_renamed(c, lambda n: n + 1 if n >= child else n) for c in calls)


def _target(call: Call) -> int | None:
    """The process a process_madvise names (None for other calls)."""
    return call.arg("target") if call.name == "process_madvise" else None


def _renamed(call: Call, number: Callable[[int], int]) -> Call:
    """`call` with its process, and the process it names, renumbered."""
    target = _target(call)
    if target is None:
        return replace(call, proc=number(call.proc))
    return replace(call, proc=number(call.proc), args=(number(target), *call.args[1:]))


def _valid(calls: tuple[Call, ...]) -> Program | None:
    program = keep_valid(calls)
    return program if program.calls else None


_MUTATORS: dict[str, Callable[[Program, Source, frozenset[str] | None, Covers],
                              Program | None]] = {
    "insert": _insert, "remove": _remove, "replace": _replace, "argument": _argument,
    "fork": _fork,
}
