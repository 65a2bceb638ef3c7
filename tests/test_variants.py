"""Variants of a minimized program (fuzzer/reduce/variants.py), as tables in program text.

Each row: a program and its diverging step; every variant it must make, in order, as
"axis: value" ("*" marks the program itself on a set-axis); and the full text of some
of them. The summary is tested on made-up outcomes; running them is in
test_variants_kernel.py.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest

from fuzzer.prog import parse
from fuzzer.reduce.variants import make_variants
from fuzzer.reduce.variants_run import distinct_programs, within
from fuzzer.reduce.variants_summary import state, summary_lines

RW = "PROT_READ|PROT_WRITE"
AP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"
ONFAULT = f"""
    mmap(@0, 2p, {RW}, {AP}, -1, 0)
    mlock2(@0, 2p, MLOCK_ONFAULT)
    """
DONTUNMAP = """
    mmap(@0, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
    mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @1)
    """
TOUCH = f"""
    mmap(@0, 2p, PROT_READ, {AP}, -1, 0)
    mmap(@4, 2p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
    touch(@5, write)
    """
MREMAP = f"""
    mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
    mremap(@0, 2p, 2p, 0, @0)
    """
MEMFD_FORKS = """
    memfd_create()
    ftruncate(0, 2p)
    mmap(@0, 2p, PROT_READ, MAP_SHARED|MAP_FIXED, 0, 0)
    fork()
    fork()
    fork()
    p3: mlock(@0, 2p)
    """
SET_AXES = ["kind: anonymous private", "kind: anonymous shared", "kind: memfd shared",
            "kind: memfd private", "kind: tmpfile shared", "kind: tmpfile private",
            "prot: PROT_NONE", "prot: R", "prot: RW", "prot: X",
            "prot: RWX", "lock: unlocked", "lock: MAP_LOCKED", "lock: mlock",
            "lock: mlock2 ONFAULT", "pages: 1 page", "pages: 2 pages", "pages: 8 pages",
            "process: parent", "process: child"]


def _base(labels: list[str], *bases: str) -> list[str]:
    return [f"{label}*" if label in bases else label for label in labels]


@dataclass(frozen=True)
class Row:
    name: str
    text: str
    step: int
    labels: list[str]
    texts: dict[str, str]  # "axis: value" -> the variant's program text, "step N" first


ROWS = [
    Row("mlock2 onfault", ONFAULT, 1,
        ["drop: MLOCK_ONFAULT on mlock2", "add: MAP_LOCKED on mmap", "add: MAP_POPULATE on mmap",
         *_base(SET_AXES, "kind: anonymous private", "prot: RW", "lock: unlocked",
                "pages: 2 pages", "process: parent")],
        {"drop: MLOCK_ONFAULT on mlock2": f"""step 1
            mmap(@0, 2p, {RW}, {AP}, -1, 0)
            mlock2(@0, 2p, 0)
            """,
         "kind: memfd shared": f"""step 3
            memfd_create()
            ftruncate(0, 2p)
            mmap(@0, 2p, {RW}, MAP_SHARED|MAP_FIXED, 0, 0)
            mlock2(@0, 2p, MLOCK_ONFAULT)
            """,
         "kind: tmpfile shared": f"""step 3
            tmpfile()
            ftruncate(0, 2p)
            mmap(@0, 2p, {RW}, MAP_SHARED|MAP_FIXED, 0, 0)
            mlock2(@0, 2p, MLOCK_ONFAULT)
            """,
         "lock: mlock": f"""step 2
            mmap(@0, 2p, {RW}, {AP}, -1, 0)
            mlock(@0, 2p)
            mlock2(@0, 2p, MLOCK_ONFAULT)
            """,
         "pages: 8 pages": f"""step 1
            mmap(@0, 8p, {RW}, {AP}, -1, 0)
            mlock2(@0, 8p, MLOCK_ONFAULT)
            """,
         "process: child": f"""step 2
            fork()
            p1: mmap(@0, 2p, {RW}, {AP}, -1, 0)
            p1: mlock2(@0, 2p, MLOCK_ONFAULT)
            """}),
    Row("the 6.18 DONTUNMAP leak", DONTUNMAP, 1,
        ["drop: MAP_LOCKED on mmap", "drop: MREMAP_MAYMOVE on mremap",
         "drop: MREMAP_FIXED on mremap", "drop: MREMAP_DONTUNMAP on mremap",
         "add: MAP_POPULATE on mmap",
         *_base(SET_AXES, "kind: anonymous private", "prot: PROT_NONE", "lock: MAP_LOCKED",
                "pages: 1 page", "process: parent")],
        {"drop: MREMAP_DONTUNMAP on mremap": """step 1
            mmap(@0, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
            mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @1)
            """,
         "lock: unlocked": """step 1
            mmap(@0, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
            mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @1)
            """,
         "pages: 2 pages": """step 1
            mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
            mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @2)
            """}),
    # only the mmap under the touched page is the range's; memfd offsets follow addresses;
    # no 1-page variant, as @5 cannot be halved
    Row("touch of the second mapping", TOUCH, 2,
        ["drop: MAP_POPULATE on mmap", "add: MAP_LOCKED on mmap",
         *_base([a for a in SET_AXES if a != "pages: 1 page"], "kind: anonymous shared",
                "prot: RW", "lock: unlocked", "pages: 2 pages", "process: parent")],
        {"kind: memfd private": f"""step 4
            memfd_create()
            ftruncate(0, 6p)
            mmap(@0, 2p, PROT_READ, {AP}, -1, 0)
            mmap(@4, 2p, {RW}, MAP_PRIVATE|MAP_FIXED|MAP_POPULATE, 0, 16384)
            touch(@5, write)
            """,
         "pages: 8 pages": f"""step 2
            mmap(@0, 8p, PROT_READ, {AP}, -1, 0)
            mmap(@16, 8p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
            touch(@20, write)
            """}),
    # flags added to mremap: a free target after everything the program names
    Row("mremap in place", MREMAP, 1,
        ["drop: MAP_LOCKED on mmap", "add: MAP_POPULATE on mmap", "add: MREMAP_MAYMOVE on mremap",
         "add: MREMAP_FIXED on mremap", "add: MREMAP_DONTUNMAP on mremap",
         *_base(SET_AXES, "kind: anonymous private", "prot: RW", "lock: MAP_LOCKED",
                "pages: 2 pages", "process: parent")],
        {"add: MREMAP_DONTUNMAP on mremap": f"""step 1
            mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
            mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @2)
            """}),
    # a memfd program: anonymous kinds drop its fd, tmpfile kinds open a tmpfile instead
    # of the memfd; three forks leave no room for a child
    Row("memfd, three forks", MEMFD_FORKS, 6,
        ["add: MAP_LOCKED on mmap", "add: MAP_POPULATE on mmap",
         *_base(SET_AXES[:-1], "kind: memfd shared", "prot: R", "lock: unlocked",
                "pages: 2 pages", "process: parent")],
        {"kind: anonymous private": """step 6
            memfd_create()
            ftruncate(0, 2p)
            mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
            fork()
            fork()
            fork()
            p3: mlock(@0, 2p)
            """,
         "kind: tmpfile private": """step 6
            tmpfile()
            ftruncate(0, 2p)
            mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_FIXED, 0, 0)
            fork()
            fork()
            fork()
            p3: mlock(@0, 2p)
            """}),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_variants(row: Row) -> None:
    program = parse(textwrap.dedent(row.text))
    variants = make_variants(program, row.step)
    assert [f"{v.axis}: {v.value}{'*' if v.base else ''}" for v in variants] == row.labels
    for v in variants:
        assert (v.program == program) == v.base  # a base is the program, nothing else is
        assert v.program.calls[v.step].name == program.calls[row.step].name
    by_label = {f"{v.axis}: {v.value}": v for v in variants}
    for label, text in row.texts.items():
        head, body = text.split("\n", 1)
        v = by_label[label]
        assert (f"step {v.step}", v.program.text()) == (head, textwrap.dedent(body)), label


def test_step_outside_the_program() -> None:
    with pytest.raises(ValueError, match="step 2 is not in a program of 2 calls"):
        make_variants(parse(textwrap.dedent(ONFAULT)), 2)


@dataclass(frozen=True)
class Ran:
    axis: str
    value: str
    triggers: bool
    diverged_step: int | None = None
    diverged_kind: str = ""
    title: str = ""
    base: bool = False
    step: int = 1


def _hit(axis: str, value: str, base: bool = False) -> Ran:
    return Ran(axis, value, True, 1, "lock", "lock: ...", base)


SUMMARY = [
    ([_hit("drop", "MREMAP_FIXED on mremap"), Ran("drop", "MAP_LOCKED on mmap", False),
      _hit("add", "MAP_POPULATE on mmap"), Ran("add", "MAP_LOCKED on mmap", False),
      _hit("kind", "anonymous private", True), Ran("kind", "memfd shared", False, 1, "vmlck"),
      _hit("prot", "PROT_NONE", True), _hit("prot", "R"),
      Ran("lock", "mlock2 ONFAULT", False, 0, "lock"),
      Ran("pages", "8 pages", False, title="unsupported: mremap of 8 pages")],
     ["needs: MAP_LOCKED on mmap",
      "does not need: MREMAP_FIXED on mremap",
      "triggers with: +MAP_POPULATE on mmap, mapping kind anonymous private, every protection",
      "not with: +MAP_LOCKED on mmap",
      "diverges otherwise with: memfd shared (vmlck)",
      "undecided (an earlier step diverges): mlock2 ONFAULT",
      "undecided (the model cannot predict it): 8 pages"]),
    ([Ran("kind", "anonymous private", False, base=True), _hit("kind", "anonymous shared")],
     ["triggers with: mapping kind anonymous shared",
      "not with: anonymous private",
      "(the minimized program itself did not trigger this time: the variants are unreliable)"]),
    ([], []),
]


@pytest.mark.parametrize(("outcomes", "lines"), SUMMARY)
def test_summary(outcomes: list[Ran], lines: list[str]) -> None:
    assert summary_lines(outcomes) == lines


def test_states() -> None:
    assert [state(o) for o in (_hit("kind", "x"), Ran("kind", "x", False),
                               Ran("kind", "x", False, 2), Ran("kind", "x", False, 1, "vmlck"),
                               Ran("kind", "x", False, 0),
                               Ran("kind", "x", False, title="unsupported: y"))] == \
        ["yes", "no", "no", "other", "earlier", "unsupported"]


def test_within_counts_distinct_programs() -> None:
    """A budget of runs keeps the first variants whose programs fit; a base variant (the
    program itself) costs one run on every axis together."""
    variants = make_variants(parse(textwrap.dedent(ONFAULT)), 1)
    # 18 changed programs, one of them twice (+MAP_LOCKED is also "locked by MAP_LOCKED"),
    # and the program itself
    assert (len([v for v in variants if not v.base]), distinct_programs(variants)) == (18, 18)
    kept = within(variants, 4)
    assert distinct_programs(kept) == 4
    assert [f"{v.axis}: {v.value}" for v in kept][:5] == [
        "drop: MLOCK_ONFAULT on mlock2", "add: MAP_LOCKED on mmap", "add: MAP_POPULATE on mmap",
        "kind: anonymous private", "prot: RW"]
    first = {v.program for v in kept[:5]}
    assert [f"{v.axis}: {v.value}" for v in kept[5:]] == [  # the ones run already
        "lock: unlocked", "lock: MAP_LOCKED", "pages: 2 pages", "process: parent"]
    assert {v.program for v in kept[5:]} <= first
