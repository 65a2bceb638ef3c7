"""Mutation in program space (prog/mutate.py): every result keeps the program rules,
the same bytes give the same mutation, and each kind of change happens."""

from __future__ import annotations

import random

import pytest

from fuzzer.model import covers
from fuzzer.prog import Program, parse
from fuzzer.prog.generate import ByteSource, generate
from fuzzer.prog.mutate import MUTATIONS, keep_valid, mutate, splice
from fuzzer.prog.program import check_program

PROGRAMS = {
    "one-call": "mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n",
    "lock-and-move": """\
mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_LOCKED, -1, 0)
mlock2(@1, 2p, MLOCK_ONFAULT)
mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @8)
munlock(@8, 2p)
""",
    "forked": """\
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
fork()
p1: touch(@0, write)
fork()
p2: mlock(@0, 2p)
p1: exit()
touch(@1, read)
""",
    "memfd": """\
memfd_create()
ftruncate(0, 2p)
mmap(@0, 2p, PROT_READ, MAP_SHARED|MAP_FIXED, 0, 0)
touch(@1, read)
""",
}


def _mutants(text: str, count: int) -> list[Program]:
    program, rnd = parse(text), random.Random(7)
    return [mutate(program, ByteSource(rnd.randbytes(256)), covers=covers)
            for _ in range(count)]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_mutants_keep_the_rules_and_round_trip(name: str) -> None:
    for mutant in _mutants(PROGRAMS[name], 300):
        check_program(mutant)
        assert parse(mutant.text()) == mutant
        assert all(covers(c) for c in mutant.calls)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_same_bytes_give_the_same_mutation(name: str) -> None:
    program = parse(PROGRAMS[name])
    data = random.Random(3).randbytes(256)
    assert mutate(program, ByteSource(data)) == mutate(program, ByteSource(data))


def test_every_kind_of_change_happens() -> None:
    original = parse(PROGRAMS["lock-and-move"])
    mutants = _mutants(PROGRAMS["lock-and-move"], 400)
    lengths = {len(m) for m in mutants}
    assert {len(original) - 1, len(original), len(original) + 1} <= lengths  # remove, insert
    same_names = [m for m in mutants if [c.name for c in m.calls] ==
                  [c.name for c in original.calls] and m != original]
    # one argument changed, the rest of the program as it was
    assert any(sum(a != b for a, b in zip(m.calls, original.calls, strict=True)) == 1
               and sum(x != y for a, b in zip(m.calls, original.calls, strict=True)
                       for x, y in zip(a.args, b.args, strict=True)) == 1 for m in same_names)
    forked = [m for m in mutants if any(c.name == "fork" for c in m.calls)]
    assert any(any(c.proc == 1 for c in m.calls) for m in forked)  # calls moved to the child
    assert len({m.text() for m in mutants}) > 100


class Planned:
    """A Source that answers with planned values (clamped to the range asked for)."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)

    def ConsumeIntInRange(self, lo: int, hi: int) -> int:
        return min(max(self.values.pop(0) if self.values else 0, lo), hi)

    def remaining_bytes(self) -> int:
        return len(self.values)


FORK_ROLL = sum(w for w, _ in MUTATIONS) - 1  # the last row of the table: "fork"


@pytest.mark.parametrize(("moves", "expected"), [
    ((0, 0, 0), """\
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
fork()
fork()
p2: touch(@0, write)
fork()
p3: mlock(@0, 2p)
p2: exit()
touch(@1, read)
"""),
    # p0's calls after the new fork move into its child p1 where the plan says 1
    ((1, 0, 1), """\
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
fork()
p1: fork()
p2: touch(@0, write)
fork()
p3: mlock(@0, 2p)
p2: exit()
p1: touch(@1, read)
"""),
])
def test_a_fork_before_others_renumbers_their_children(moves: tuple[int, ...],
                                                        expected: str) -> None:
    """The n-th fork creates pn: a fork inserted before the others shifts their
    children's numbers, so every call stays with the process that made it."""
    program = parse(PROGRAMS["forked"])
    mutant = mutate(program, Planned(FORK_ROLL, 1, *moves))
    check_program(mutant)
    assert mutant.text() == expected


def test_splice_keeps_the_rules() -> None:
    rnd = random.Random(11)
    texts = list(PROGRAMS.values())
    for _ in range(300):
        head, tail = parse(rnd.choice(texts)), parse(rnd.choice(texts))
        joined = splice(head, tail, ByteSource(rnd.randbytes(16)))
        check_program(joined)
        assert joined.calls


def test_keep_valid_drops_calls_of_processes_that_do_not_exist() -> None:
    calls = parse(PROGRAMS["forked"]).calls
    # without the first fork, p1 never exists and p2 is p1's: their calls go
    kept = keep_valid(calls[:1] + calls[2:])
    assert [c.proc for c in kept.calls] == [0, 0, 1, 0]
    check_program(kept)


def test_generated_programs_mutate_into_valid_programs() -> None:
    rnd = random.Random(5)
    for _ in range(200):
        program = generate(ByteSource(rnd.randbytes(rnd.randint(20, 400))), covers=covers)
        for _ in range(3):
            program = mutate(program, ByteSource(rnd.randbytes(256)), covers=covers)
            check_program(program)


REMOVE_ROLL = 30  # the "remove" row of MUTATIONS starts after insert's 30


def test_removing_a_fork_takes_its_child_and_renumbers_the_rest() -> None:
    program = parse(PROGRAMS["forked"])
    mutant = mutate(program, Planned(REMOVE_ROLL, 1))  # call 1: the first fork()
    check_program(mutant)
    assert mutant.text() == """\
mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
fork()
p1: mlock(@0, 2p)
touch(@1, read)
"""


def test_a_range_changes_its_address_and_length_together() -> None:
    """A change to a range's address or length mostly gives both anew, as the
    generator chooses them together, so the new range mostly stays in the mapping
    (a new address with the old length would often run past its end)."""
    text = """\
mmap(@0, 8p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
mlock(@5, 3p)
"""
    original = parse(text).calls
    changed = [m.calls[1] for m in _mutants(text, 600)
               if len(m) == 2 and m.calls[0] == original[0] and m.calls[1].name == "mlock"
               and m.calls[1] != original[1]]
    both = [c for c in changed if all(a != b for a, b in zip(c.args, original[1].args,
                                                             strict=True))]
    inside = [c for c in changed if c.args[0] + c.args[1] <= 8 * 4096]
    assert len(changed) > 50
    assert len(both) > 0.3 * len(changed) and len(inside) > 0.6 * len(changed), \
        (len(changed), len(both), len(inside))
