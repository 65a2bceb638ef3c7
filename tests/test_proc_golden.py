"""The /proc parsers on real files from two kernels, against golden parse results.

tests/fixtures/proc/<kernel>/<name>/ holds smaps, status and the arena's
pagemap words as one kernel printed them after a short program (program.prog;
meta says which kernel, the arena base and the zero page's PFN there). The
production parsers turn them into a Snapshot; expected.txt beside them is that
Snapshot in words: every VMA (arena VMAs as page ranges), its lock flags as the
oracle reads them, Rss/Pss/Locked, VmLck, and one presence letter per page. A
parser that changes behaviour changes the text, and the test shows the diff.

Capture new fixtures with tests/golden/capture_proc.py (its docstring has the
commands); write or refresh expected.txt with
`pytest tests/test_proc_golden.py --regen-golden`, then review `git diff`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fuzzer.observe import Snapshot, Vma
from fuzzer.oracle.views import presence
from fuzzer.prog import ARENA_PAGES
from fuzzer.prog.syscalls import PAGE
from fuzzer.snapshot.parse import parse_smaps, parse_vmlck

PROC = Path(__file__).parent / "fixtures" / "proc"
FOLDERS = sorted(p for p in PROC.glob("*/*") if p.is_dir())
KERNELS = {"6.18": "6.18.", "6.1-uml": "6.1."}  # folder -> the release it was captured on


def meta(folder: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in (folder / "meta").read_text().splitlines())


def load(folder: Path) -> tuple[Snapshot, int]:
    """The fixture parsed by the production parsers, and its arena base."""
    m = meta(folder)
    words = tuple(int(w, 16) for w in (folder / "pagemap").read_text().split())
    snap = Snapshot(parse_smaps((folder / "smaps").read_text()),
                    parse_vmlck((folder / "status").read_text()), words, int(m["zero_pfn"], 16))
    return snap, int(m["arena"], 16)


def describe(folder: Path) -> str:
    snap, base = load(folder)
    end = base + ARENA_PAGES * PAGE
    m = meta(folder)
    lines = [f"# {folder.relative_to(PROC)}: {m['process']} on {m['release']}, "
             "parsed by fuzzer/observe (regenerate: pytest tests/test_proc_golden.py "
             "--regen-golden)",
             f"VMAs {len(snap.vmas)}, in the arena "
             f"{sum(1 for v in snap.vmas if v.end > base and v.start < end)}"]
    for v in snap.vmas:
        lines.append(_vma_line(v, base, end))
    lines.append(f"VmLck {snap.vmlck // 1024} kB, locked VMAs {snap.locked_size() // 1024} kB")
    letters = "".join(presence(w, snap.zero_pfn) for w in snap.pagemap)
    lines += [f"pages @{i}-{i + 15} {letters[i:i + 16]}" for i in range(0, len(letters), 16)]
    return "\n".join(lines) + "\n"


def _vma_line(v: Vma, base: int, end: int) -> str:
    if v.end > base and v.start < end:
        first, last = (v.start - base) // PAGE, (v.end - base) // PAGE - 1
        where = f"@{first}" if first == last else f"@{first}-{last}"
    else:
        where = f"{v.start:x}-{v.end:x}"
    lock = " ".join(f for f, on in (("lo", v.lo), ("lf", v.lf)) if on) or "-"
    name = f" {v.name}" if v.name else ""
    return (f"{where} {v.perms} {lock} rss {v.rss // 1024} pss {v.pss // 1024} "
            f"locked {v.locked // 1024} kB inode {v.inode}{name} "
            f"[{' '.join(sorted(v.flags))}]")


def test_fixtures_cover_both_kernels() -> None:
    kernels = {f.parent.name for f in FOLDERS}
    assert kernels == set(KERNELS), kernels
    for kernel in KERNELS:
        names = {f.name for f in FOLDERS if f.parent.name == kernel}
        assert 5 <= len(names) <= 10, (kernel, names)  # a handful each


@pytest.mark.parametrize("folder", FOLDERS, ids=[str(f.relative_to(PROC)) for f in FOLDERS])
def test_parse_matches_golden(folder: Path, golden: Callable[[Path, str], None]) -> None:
    m = meta(folder)
    assert m["release"].startswith(KERNELS[folder.parent.name]), m
    snap, base = load(folder)
    assert len(snap.pagemap) == ARENA_PAGES
    assert any(base <= v.start < base + ARENA_PAGES * PAGE for v in snap.vmas), \
        "the fixture must contain the arena"
    golden(folder / "expected.txt", describe(folder))


def test_lock_on_fault_is_read_from_both_mnemonics() -> None:
    """6.1 prints VM_LOCKONFAULT as "??", 6.18 as "lf": the oracle must read both as lf."""
    for kernel, mnemonic in (("6.18", "lf"), ("6.1-uml", "??")):
        snap, base = load(PROC / kernel / "lock-on-fault")
        arena = [v for v in snap.vmas if v.start >= base and v.end <= base + ARENA_PAGES * PAGE]
        assert arena and all(v.lo and v.lf and mnemonic in v.flags for v in arena), kernel


def test_golden_text_shows_a_changed_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The golden text depends on what the parsers say: an oracle that forgot 6.1's "??"
    would show up in the 6.1 lock-on-fault fixture's diff."""
    folder = PROC / "6.1-uml" / "lock-on-fault"
    before = describe(folder)
    monkeypatch.setattr(Vma, "lf", property(lambda v: "lf" in v.flags))
    after = describe(folder)
    assert before != after and " lo lf " in before and " lo lf " not in after
