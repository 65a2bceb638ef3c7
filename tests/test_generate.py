"""Generation: any bytes give a valid program, and short inputs stay plain.

The second property is a regression test: when an exhausted source read as
"yes", every optional mmap flag came on at once, so MAP_POPULATE never came
without MAP_LOCKED and the motivating bug could not be found by a campaign.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzer.model import SUPPORTED, covers
from fuzzer.prog import parse
from fuzzer.prog.generate import ByteSource, Generator, generate
from fuzzer.prog.program import check_call, check_program
from fuzzer.prog.syscalls import MAP_LOCKED, MAP_POPULATE


@given(st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_any_bytes_give_a_valid_program(data: bytes) -> None:
    program = generate(ByteSource(data), SUPPORTED, covers)
    check_program(program)
    assert 1 <= len(program) <= 24
    assert parse(program.text()) == program
    assert all(covers(call) for call in program.calls)


def test_exhausted_bytes_mean_no() -> None:
    # Every flag byte missing: no optional flag is set, and the program ends.
    program = generate(ByteSource(b"\x05"), SUPPORTED, covers)
    assert len(program) == 1


def test_populate_comes_without_lock() -> None:
    rng = random.Random(1)
    alone = 0
    for _ in range(500):
        for call in generate(ByteSource(rng.randbytes(200)), SUPPORTED, covers).calls:
            if call.name == "mmap":
                flags = call.arg("flags")
                alone += bool(flags & MAP_POPULATE and not flags & MAP_LOCKED)
    assert alone > 100


def test_calls_restrict_the_program() -> None:
    rng = random.Random(2)
    for _ in range(100):
        program = generate(ByteSource(rng.randbytes(200)), frozenset({"mlock", "touch"}))
        assert {c.name for c in program.calls} <= {"mlock", "touch"}


@pytest.mark.slow
def test_many_random_inputs_stay_in_the_arena() -> None:
    """Every call of thousands of decoded programs passes the arena check by itself
    (the generator also drops a call that would not, but none should need it)."""
    rng = random.Random(7)
    for _ in range(3000):
        data = rng.randbytes(rng.randint(1, 400))
        gen = Generator(ByteSource(data), SUPPORTED, covers)
        while gen.src.remaining_bytes():
            call = gen.call()
            check_call(call)
            gen.track(call)
