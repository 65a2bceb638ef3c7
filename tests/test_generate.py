"""Generation: any bytes give a valid program, and short inputs stay plain.

The second property is a regression test: when an exhausted source read as
"yes", every optional mmap flag came on at once, so MAP_POPULATE never came
without MAP_LOCKED and the motivating bug could not be found by a campaign.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzer.model import SUPPORTED, State, Unsupported, covers
from fuzzer.model.features import NEWEST
from fuzzer.model.state import LARGE
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.prog import parse
from fuzzer.prog.generate import ByteSource, Generator, generate, mthp_block
from fuzzer.prog.program import check_call, check_program
from fuzzer.prog.syscalls import MADV_REMOVE, MAP_LOCKED, MAP_POPULATE, PAGE


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


SHARED = "mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
PRIVATE = "mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
GUARD = "madvise(@1, 1p, MADV_GUARD_INSTALL)\n"
# (calls so far, a page, whether its mapping reads as shared, the guarded pages,
#  least and most share of MADV_REMOVE in madvise's advice at that page)
ADVICE_CASES = [
    (PRIVATE, 0, False, set(), 0.0, 0.08),
    (PRIVATE + GUARD, 0, False, {1}, 0.0, 0.08),
    (SHARED, 0, True, set(), 0.10, 0.25),
    (SHARED + GUARD, 0, True, {1}, 0.18, 0.40),
    (SHARED + GUARD, 3, True, {1}, 0.18, 0.40),
    (SHARED + "mprotect(@0, 1p, PROT_READ)\n", 2, True, set(), 0.10, 0.25),  # split: shared
    (SHARED + GUARD + "madvise(@0, 4p, MADV_GUARD_REMOVE)\n", 0, True, set(), 0.10, 0.25),
    (SHARED + GUARD + "munmap(@1, 1p)\n", 0, True, set(), 0.10, 0.25),
    (SHARED + GUARD + PRIVATE, 0, False, set(), 0.0, 0.08),  # mapped over
    (SHARED + "mremap(@0, 4p, 4p, MREMAP_MAYMOVE|MREMAP_FIXED, @8)\n", 9, True, set(),
     0.10, 0.25),  # moved: still shared
]


@pytest.mark.parametrize(("text", "page", "shared", "guarded", "least", "most"), ADVICE_CASES)
def test_advice_follows_the_mapping(text: str, page: int, shared: bool, guarded: set[int],
                                    least: float, most: float) -> None:
    rng = random.Random(5)
    gen = Generator(ByteSource(b""), SUPPORTED, covers)
    for call in parse(text).calls:
        gen.track(call)
    view = gen.views[0]
    assert (view.pages[page] in view.shared, view.guarded) == (shared, guarded)
    removes = 0
    for _ in range(2000):
        gen.src = ByteSource(rng.randbytes(8))
        removes += gen.advice(page * PAGE) == MADV_REMOVE
    assert least <= removes / 2000 <= most


@pytest.mark.parametrize(("first", "pages", "block"), [
    (0, 4, 0),      # a 4-page mapping at an aligned page is one 16 KiB block
    (0, 40, 0),     # the largest block (64 KiB, 16 pages) from page 0
    (1, 40, 16),    # the first 16-aligned block after page 1
    (1, 16, 8),     # 16 pages from page 1 hold no 16-page block, an 8-page one at 8
    (3, 6, 4),      # 6 pages from 3 hold the 4-page block at 4
    (1, 4, 1),      # 4 pages from 1 hold no aligned block: the mapping's first page
    (60, 4, 60),    # the arena's last block
])
def test_mthp_block(first: int, pages: int, block: int) -> None:
    assert mthp_block(first, pages) == block


def test_generated_programs_map_large_folios_where_the_host_allows() -> None:
    """With 16 and 64 kB mTHP enabled, a share of fresh programs maps a large folio
    (an mmap advised huge and written at once): 0.6 % did when only mappings of 16 pages
    or more were, 3 % with every mapping that holds a 16 kB block (docs/SEMANTICS.md §19)."""
    rng = random.Random(1)
    features = replace(NEWEST, mthp_orders=1 << 2 | 1 << 4)
    folios = 0
    for _ in range(1000):
        world = World.start(State(features=features))
        for call in generate(ByteSource(rng.randbytes(256)), SUPPORTED, covers).calls:
            try:
                world_step(world, call)
            except Unsupported:
                break
        folios += any(p is not None and p.state.endswith(LARGE)
                      for s in world.procs if s is not None for p in s.pages)
    assert folios >= 20, folios
