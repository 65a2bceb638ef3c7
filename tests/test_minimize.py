"""Minimization as tables: a program, a predicate said in words, the program it shrinks to.

Every predicate here is pure (it reads the program, or runs the model on it),
so these tests say exactly what the passes and the one ordering of "simpler"
do without a kernel. The kernel-driven predicate is covered in test_reduce_cli.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import replace

import pytest

from fuzzer.model import State, Unsupported, step
from fuzzer.oracle.views import model_view
from fuzzer.prog import Call, Program, parse
from fuzzer.prog.syscalls import (
    MAP_FIXED_NOREPLACE,
    MAP_LOCKED,
    MAP_POPULATE,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    PAGE,
)
from fuzzer.reduce.minimize import minimize, simplicity, weight

RW = "PROT_READ|PROT_WRITE"
AP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"


def prog(text: str) -> Program:
    return parse(textwrap.dedent(text))


def covers(call: Call, page: int) -> bool:
    return call.arg("addr") <= page * PAGE < call.arg("addr") + call.arg("len")


# ------------------------------------------------------------ predicates


def populate_then_touch(p: Program) -> bool:
    """Fails while it contains an mmap with MAP_POPULATE without MAP_LOCKED and a later
    touch of a page of that mapping."""
    for i, c in enumerate(p.calls):
        populates = c.name == "mmap" and \
            c.arg("flags") & (MAP_POPULATE | MAP_LOCKED) == MAP_POPULATE
        if populates and any(d.name == "touch" and covers(c, d.arg("addr") // PAGE)
                             for d in p.calls[i + 1:]):
            return True
    return False


def onfault_mlock2(p: Program) -> bool:
    """Fails while some mlock2 asks for MLOCK_ONFAULT over at least one page."""
    return any(c.name == "mlock2" and c.arg("flags") & MLOCK_ONFAULT and c.arg("len") >= PAGE
               for c in p.calls)


def munmap_of_locked(p: Program) -> bool:
    """Fails while an munmap covers a page that an earlier MAP_LOCKED mmap mapped."""
    for i, c in enumerate(p.calls):
        if c.name == "mmap" and c.arg("flags") & MAP_LOCKED:
            for d in p.calls[i + 1:]:
                if d.name == "munmap" and d.arg("addr") % PAGE == 0 and any(
                        covers(c, page) for page in range(d.arg("addr") // PAGE,
                                                          (d.arg("addr") + d.arg("len")) // PAGE)):
                    return True
    return False


def balanced_touch(p: Program) -> bool:
    """Fails while it has a touch and exactly as many munmaps as mmaps (only pairs can go)."""
    names = [c.name for c in p.calls]
    return "touch" in names and names.count("mmap") == names.count("munmap")


def noreplace_collision(p: Program) -> bool:
    """Fails while an mmap with MAP_FIXED_NOREPLACE lands on a page an earlier mmap mapped."""
    for i, c in enumerate(p.calls):
        noreplace = c.name == "mmap" and c.arg("flags") & MAP_FIXED_NOREPLACE
        if noreplace and any(d.name == "mmap" and covers(d, c.arg("addr") // PAGE)
                             for d in p.calls[:i]):
            return True
    return False


def mlockall_onfault(p: Program) -> bool:
    """Fails while mlockall(MCL_ONFAULT) alone appears anywhere."""
    return any(c.name == "mlockall" and c.arg("flags") == MCL_ONFAULT for c in p.calls)


def model_diverges(bug: Callable[[Call], Call]) -> Callable[[Program], bool]:
    """Fails while the model and the model on calls rewritten by `bug` (an emulated kernel
    bug, as an injection would do it) disagree on the arena after some step."""

    def predicate(p: Program) -> bool:
        good, bad = State(), State()
        try:
            for call in p.calls:
                want, got = step(good, call), step(bad, bug(call))
                if want != got or model_view(good.pages) != model_view(bad.pages):
                    return True
        except Unsupported:
            return False
        return False

    predicate.__doc__ = model_diverges.__doc__
    return predicate


def populate_needs_lock(call: Call) -> Call:
    """mmap(MAP_POPULATE) without MAP_LOCKED populates nothing."""
    if call.name == "mmap" and call.arg("flags") & (MAP_POPULATE | MAP_LOCKED) == MAP_POPULATE:
        flags = call.arg("flags") & ~MAP_POPULATE
        return replace(call, args=(*call.args[:3], flags, *call.args[4:]))
    return call


# (program in, predicate, program out)
CASES = [
    (f"""
     mmap(@4, 8p+5, PROT_READ|PROT_WRITE|PROT_EXEC, {AP}|MAP_POPULATE|MAP_NORESERVE, -1, 0)
     mlock(@4, 2p)
     munmap(@20, 1p)
     touch(@6+7, write)
     mprotect(@4, 1p, PROT_READ)
     touch(@9, read)
     """, populate_then_touch, """
     mmap(@0, 1p, PROT_NONE, MAP_POPULATE, -1, 0)
     touch(@0, read)
     """),
    (f"""
     mmap(@3, 6p, {RW}, {AP}, -1, 0)
     touch(@4, write)
     mlock2(@3+17, 3p+9, MLOCK_ONFAULT|0x80)
     munlock(@3, 6p)
     """, onfault_mlock2, """
     mlock2(@0, 1p, MLOCK_ONFAULT)
     """),
    # The addresses of both calls move together: one shift of the whole program.
    (f"""
     mmap(@10, 4p, {RW}, {AP}|MAP_LOCKED, -1, 0)
     touch(@11, write)
     mprotect(@10, 1p, PROT_READ)
     munmap(@12, 2p)
     """, munmap_of_locked, """
     mmap(@0, 1p, PROT_NONE, MAP_LOCKED, -1, 0)
     munmap(@0, 1p)
     """),
    (f"""
     mmap(@0, 2p, {RW}, {AP}, -1, 0)
     munmap(@0, 2p)
     mmap(@4, 1p, PROT_READ, {AP}, -1, 0)
     munmap(@4, 1p)
     touch(@5, write)
     """, balanced_touch, """
     touch(@0, read)
     """),
    (f"""
     mmap(@2, 3p, {RW}, {AP}|MAP_POPULATE, -1, 0)
     mlock(@2, 1p)
     mmap(@3, 1p, {RW}, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 4096)
     """, noreplace_collision, """
     mmap(@0, 1p, PROT_NONE, 0, -1, 0)
     mmap(@0, 1p, PROT_NONE, MAP_FIXED_NOREPLACE, -1, 0)
     """),
    (f"""
     mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
     mlockall(MCL_ONFAULT)
     munmap(@0, 1p)
     """, mlockall_onfault, """
     mlockall(MCL_ONFAULT)
     """),
    # The model against the model with the 2015 bug: MAP_POPULATE on a read-only
    # private mapping maps the zero page, without it nothing; write and exec go.
    (f"""
     mmap(@6, 4p, {RW}, {AP}, -1, 0)
     touch(@6, write)
     mmap(@1, 3p, PROT_READ|PROT_EXEC, {AP}|MAP_POPULATE, -1, 0)
     mlock(@6, 1p)
     """, model_diverges(populate_needs_lock), """
     mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
     """),
]


@pytest.mark.parametrize(("before", "predicate", "after"), CASES,
                         ids=[c[1].__name__ for c in CASES])
def test_minimize_table(before: str, predicate: Callable[[Program], bool], after: str) -> None:
    original = prog(before)
    assert predicate(original), predicate.__doc__
    result = minimize(original, predicate, budget=1000)
    assert result.program.text() == textwrap.dedent(after).lstrip("\n")
    assert predicate(result.program)
    assert not result.exhausted
    assert (result.original_calls, result.minimized_calls) == (len(original), len(result.program))
    assert result.minimized_weight == weight(result.program) <= result.original_weight


def _counting(predicate: Callable[[Program], bool]) -> tuple[list[str], Callable[[Program], bool]]:
    seen: list[str] = []

    def counted(p: Program) -> bool:
        seen.append(p.hash)
        return predicate(p)

    return seen, counted


BIG = CASES[0][0]


def test_cached_by_hash_and_counted() -> None:
    seen, counted = _counting(populate_then_touch)
    result = minimize(prog(BIG), counted, budget=1000)
    assert len(seen) == len(set(seen)) == result.predicate_calls
    assert prog(BIG).hash not in seen  # the original fails by contract: never re-run


def test_deterministic() -> None:
    first = minimize(prog(BIG), populate_then_touch, budget=1000)
    assert minimize(prog(BIG), populate_then_touch, budget=1000) == first


@pytest.mark.parametrize("budget", [1, 3, 7, 15])
def test_budget_is_a_hard_limit(budget: int) -> None:
    seen, counted = _counting(populate_then_touch)
    result = minimize(prog(BIG), counted, budget=budget)
    assert len(seen) == result.predicate_calls <= budget
    assert result.exhausted
    assert populate_then_touch(result.program)  # the best found so far, still failing
    assert simplicity(result.program) <= simplicity(prog(BIG))


def test_nothing_else_fails_keeps_the_original() -> None:
    original = prog(BIG)
    result = minimize(original, lambda p: p == original, budget=1000)
    assert result.program == original
    assert not result.exhausted


def test_known_step_drops_the_tail_first() -> None:
    seen, counted = _counting(lambda p: len(p) >= 2)
    original = prog(BIG)
    result = minimize(original, counted, budget=1, step=1)
    assert result.program == Program(original.calls[:2])
    assert len(seen) == 1


def test_unknown_step_bisects_the_prefix() -> None:
    original = prog(BIG)  # fails from the 4th call on: the touch of a populated page
    seen, counted = _counting(populate_then_touch)
    result = minimize(original, counted, budget=3)
    assert len(result.program) <= 4
    assert len(seen) == 3


def test_only_strictly_simpler_candidates() -> None:
    """Every candidate the predicate sees is simpler than the program it came from."""
    seen: list[Program] = []

    def predicate(p: Program) -> bool:
        seen.append(p)
        return populate_then_touch(p)

    original = prog(BIG)
    minimize(original, predicate, budget=1000)
    assert all(simplicity(p) < simplicity(original) for p in seen)


def test_candidates_stay_valid() -> None:
    """A shrunk range never runs past the arena; a flag-less mmap is still a valid call."""
    from fuzzer.prog.program import check_program

    seen: list[Program] = []

    def predicate(p: Program) -> bool:
        check_program(p)
        seen.append(p)
        return onfault_mlock2(p)

    minimize(prog(CASES[1][0]), predicate, budget=1000)
    assert seen
