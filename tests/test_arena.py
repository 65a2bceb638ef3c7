"""The arena is chosen by the address space of the kernel a process runs on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fuzzer.prog import ARENA, ARENA_BASE, ARENA_SIZE
from fuzzer.prog.arena import (
    HOST,
    HUGE_PAGES,
    PMD_PAGES,
    SIZE_ENV,
    UML,
    Arena,
    for_space,
    running,
    size_error,
    sized,
    space_end,
)
from fuzzer.prog.program import WRAP_MIN

# The top of /proc/self/maps in a User-Mode Linux 6.1 guest (TASK_SIZE 0x7fc0000000)
# and on an x86-64 host (4-level paging, with the gate VMA above user space).
UML_MAPS = """\
403a5000-4060b000 rw-p 00000000 00:00 0
7fbfbba000-7fbfbdb000 rw-p 00000000 00:00 0                              [stack]
7fbffff000-7fc0000000 r-xp 00000000 00:00 0                              [vdso]
"""
HOST_MAPS = """\
7ffd4b1e7000-7ffd4b208000 rw-p 00000000 00:00 0                          [stack]
7ffd4b3f2000-7ffd4b3f4000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
"""


def test_values() -> None:
    assert Arena("host", 0x200000000000, 64) == HOST
    assert UML.base == 0x4000000000
    assert HOST.size == 64 * 4096 and HOST.end == HOST.base + HOST.size
    assert HOST.wrap_min == 0xFFFFE00000000000
    assert HOST.contains(HOST.base) and not HOST.contains(HOST.end)
    assert HOST.overlaps(HOST.base - 4096, HOST.base + 1)
    assert not HOST.overlaps(HOST.end, HOST.end + 4096)


@pytest.mark.parametrize(("maps", "end", "arena"), [
    (UML_MAPS, 0x7FC0000000, UML),
    (HOST_MAPS, 0x7FFD4B3F4000, HOST),
])
def test_chosen_by_the_address_space(maps: str, end: int, arena: Arena) -> None:
    assert space_end(maps) == end  # the gate VMA is the kernel's, not the process's
    assert for_space(end) == arena


def test_no_arena_fits() -> None:
    with pytest.raises(ValueError, match="no arena fits"):
        for_space(UML.end - 1)


def test_this_process() -> None:
    """The constants programs are checked and encoded with are this kernel's arena's."""
    assert running() == ARENA
    assert (ARENA.base, ARENA.size, ARENA.wrap_min) == (ARENA_BASE, ARENA_SIZE, WRAP_MIN)


@pytest.mark.parametrize(("size", "pages"), [("", 64), ("small", 64), ("huge", 1024)])
def test_sized_by_the_user(size: str, pages: int) -> None:
    """MMFUZZ_ARENA picks the size; the base stays the kernel's, and a huge arena's
    halves are each a 2 MiB-aligned range (a PMD-mapped THP fits in either)."""
    for arena in (HOST, UML):
        chosen = for_space(arena.end + (1 << 30), size)
        assert (chosen.base, chosen.pages) == (arena.base, pages)
        assert chosen.base % (PMD_PAGES * 4096) == 0


@pytest.mark.parametrize("size", ["HUGE", "1024", "big"])
def test_a_size_it_does_not_know(size: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"'small' .* or 'huge'"):
        sized(HOST, size)
    monkeypatch.setenv(SIZE_ENV, size)
    assert "MMFUZZ_ARENA" in (size_error() or "")
    assert running().pages == 64  # what the command line refuses before it runs


def test_running_takes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIZE_ENV, "huge")
    assert size_error() is None
    assert running() == replace(ARENA, pages=HUGE_PAGES)
