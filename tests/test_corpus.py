"""The seed corpus (corpus/seeds/*.prog): canonical text, coverage, and agreement on the kernel.

Every seed is hand-written canonical program text under a leading `#` block
that says what it exercises and which docs/SEMANTICS.md rule it checks. On the
real kernel every seed must run to the end with no divergence from the model:
a seed that diverges is either a model bug or a kernel bug, and either way
somebody has to look.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from fuzzer.check import Report
from fuzzer.model import SUPPORTED
from fuzzer.prog import Program, format_program, parse
from fuzzer.prog.syscalls import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    MLOCK_ONFAULT,
    PAGE,
    PROT_READ,
    PROT_WRITE,
    RWX,
)

SEEDS_DIR = Path(__file__).parents[1] / "corpus" / "seeds"
SEEDS = sorted(SEEDS_DIR.glob("*.prog"))
NAME = re.compile(r"^\d\d-[a-z0-9]+(?:-[a-z0-9]+)*\.prog$")


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _body(text: str) -> str:
    """The non-comment, non-blank lines, as canonical text would print them."""
    lines = (line.strip() for line in text.splitlines())
    return "".join(line + "\n" for line in lines if line and not line.startswith("#"))


def _all_programs() -> dict[str, Program]:
    return {p.name: parse(p.read_text(), str(p)) for p in SEEDS}


def test_there_are_enough_seeds() -> None:
    assert len(SEEDS) >= 28, f"{len(SEEDS)} seeds in {SEEDS_DIR}"
    numbers = [p.name[:2] for p in SEEDS]
    assert len(set(numbers)) == len(numbers), "two seeds share a number"


@pytest.mark.parametrize("path", SEEDS, ids=_ids(SEEDS))
def test_seed_is_canonical(path: Path) -> None:
    assert NAME.match(path.name), f"{path.name}: want NN-short-name.prog"
    text = path.read_text()
    lines = text.splitlines()
    assert lines and lines[0].startswith("# "), f"{path.name}: no leading comment block"
    assert "SEMANTICS.md" in text, f"{path.name}: the comment should name the rule it checks"
    comment_lines = 0
    for line in lines:
        if not line.startswith("#"):
            break
        comment_lines += 1
    assert all(not line.startswith("#") for line in lines[comment_lines:]), (
        f"{path.name}: comments belong in the leading block"
    )
    program = parse(text, str(path))
    assert format_program(program) == _body(text)
    assert text.endswith("\n")


def test_seeds_cover_every_call_and_flag() -> None:
    calls = [c for program in _all_programs().values() for c in program.calls]
    names = {c.name for c in calls}
    assert names == SUPPORTED, f"no seed uses {SUPPORTED - names}"

    mmaps = [c for c in calls if c.name == "mmap"]
    flags = {c.arg("flags") for c in mmaps}
    for mtype in (MAP_PRIVATE, MAP_SHARED):
        assert any(f & MAP_TYPE == mtype and f & MAP_ANONYMOUS for f in flags), hex(mtype)
    for bit in (MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MAP_LOCKED, MAP_NORESERVE):
        assert any(f & bit for f in flags), hex(bit)
    assert any(f & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE | MAP_NONBLOCK for f in flags)
    prots = {c.arg("prot") & RWX for c in mmaps}
    assert prots == set(range(8)), f"mmap prots never used: {set(range(8)) - prots}"

    mlock2_flags = {c.arg("flags") for c in calls if c.name == "mlock2"}
    assert {0, MLOCK_ONFAULT} <= mlock2_flags
    assert any(f & ~MLOCK_ONFAULT for f in mlock2_flags), "no invalid mlock2 flags"
    assert {c.arg("mode") for c in calls if c.name == "touch"} == {0, 1}
    assert any(c.arg("addr") % PAGE for c in calls if c.name == "mlock"), "no sub-page mlock"
    assert any(c.arg("len") >= 1 << 63 for c in calls if c.name != "touch"), "no wrapping length"


def test_motivating_seed() -> None:
    """01 is the bug that started the project: MAP_POPULATE without MAP_LOCKED."""
    path = SEEDS_DIR / "01-populate-without-lock.prog"
    (call, *_) = parse(path.read_text(), str(path)).calls
    assert call.name == "mmap"
    flags = call.arg("flags")
    assert flags & MAP_TYPE == MAP_PRIVATE and flags & MAP_ANONYMOUS
    assert flags & MAP_POPULATE and not flags & (MAP_LOCKED | MAP_NONBLOCK)
    assert call.arg("prot") == PROT_READ | PROT_WRITE


def _describe(report: Report) -> str:
    lines = []
    for d in report.divergences:
        lines += [f"step {d.step}: {d.title}", f"  expected: {d.expected}",
                  f"  observed: {d.observed}"]
    return "\n".join(lines)


@pytest.mark.kernel
@pytest.mark.parametrize("path", SEEDS, ids=_ids(SEEDS))
def test_seed_agrees_with_kernel(path: Path, run_text: Callable[[str], Report]) -> None:
    text = path.read_text()
    report = run_text(text)
    assert not report.divergences, f"{path.name} diverged:\n{_describe(report)}"
    assert len(report.steps) == len(report.program), "the run stopped early"


@pytest.mark.kernel
def test_motivating_seed_populates_on_the_kernel(run_text: Callable[[str], Report]) -> None:
    """Independent of the model: after the mmap every page is present in pagemap."""
    path = SEEDS_DIR / "01-populate-without-lock.prog"
    report = run_text(path.read_text())
    call = report.program.calls[0]
    first, count = call.arg("addr") // PAGE, call.arg("len") // PAGE
    assert report.snapshot is not None and report.steps[0].ret is not None
    words = report.snapshot.pagemap[first:first + count]
    present = [bool(w >> 63 & 1) for w in words]
    assert all(present), f"pages present after mmap(MAP_POPULATE): {present}"
    assert report.snapshot.vmlck == 0
