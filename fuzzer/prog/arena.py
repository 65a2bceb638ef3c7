"""The arena: the fixed range of the executor's address space that programs address.

A program names no raw address, only byte offsets into the arena; the arena's
place is a property of the kernel the executor runs on, not of the program.
On an x86-64 host (TASK_SIZE 1 << 47) it is `HOST`, far above the executor's
own mappings; User-Mode Linux gives processes only 0x7fc0000000 bytes of
address space, so a guest's arena is `UML`, below that end.

Which one applies is decided once per process, by the kernel it runs on:
`running()` reads the end of this process's address space (its highest user
mapping: the stack or vdso, which sit right under TASK_SIZE) and `for_space()`
picks the first arena that fits below it. The executor is spawned by this
process on the same kernel, so both see the same address space. Nothing is
read from the environment: a guest needs no variable set by its init, and a
process cannot be told an arena its kernel cannot map.

Its size is the other choice, made by the user: 64 pages unless the environment
variable `MMFUZZ_ARENA` is `huge`, which gives 1,024 pages (4 MiB, two 2 MiB-aligned
halves). Only an arena that holds an aligned 2 MiB range whole can show a PMD-mapped
transparent huge page (docs/SEMANTICS.md §22); every per-page pass of the model and
the oracle costs 16 times as much in it, so campaigns take it when they ask. The
environment carries the choice to the worker processes a campaign starts. A guest
does not get it: a User-Mode Linux target refuses the huge arena
(`campaign/target.py`).

Why at import and not as a parameter: the model (fuzzer/model) binds the
arena's constants at import, in some twenty places, and is the reference
semantics, so `fuzzer/prog/program.py` selects `ARENA = running()` when it is
first imported and exports the constants derived from it (ARENA_BASE,
ARENA_PAGES, ARENA_SIZE, WRAP_MIN). The detection is a pure function of the
address space (`for_space`), tested on both kernels' values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from fuzzer.prog.syscalls import PAGE

SIZE_ENV = "MMFUZZ_ARENA"  # "huge" for HUGE_PAGES; unset, empty or "small" for 64 pages
PMD_PAGES = 512  # a PMD-mapped huge page on x86-64: 2 MiB
HUGE_PAGES = 2 * PMD_PAGES
USER_HALF = 1 << 63  # mappings at or above this are the kernel's ([vsyscall])
MAPS = "/proc/self/maps"


@dataclass(frozen=True, slots=True)
class Arena:
    name: str
    base: int  # the address of offset 0
    pages: int = 64
    # Derived once: the oracle asks for them of every VMA at every step.
    size: int = field(init=False)
    end: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", self.pages * PAGE)
        object.__setattr__(self, "end", self.base + self.pages * PAGE)

    @property
    def wrap_min(self) -> int:
        """A length at least this large makes addr + len wrap for every arena address."""
        return (1 << 64) - self.base

    def contains(self, addr: int) -> bool:
        return self.base <= addr < self.end

    def overlaps(self, start: int, end: int) -> bool:
        return end > self.base and start < self.end

    def fits(self, space_end: int) -> bool:
        """Whether the arena lies inside an address space ending at `space_end`."""
        return self.end <= space_end


HOST = Arena("host", 0x200000000000)
UML = Arena("uml", 0x4000000000)
ARENAS = (HOST, UML)  # in order of preference


def sized(arena: Arena, size: str) -> Arena:
    """`arena` of the size `size` names (MMFUZZ_ARENA's value)."""
    if size in ("", "small"):
        return arena
    if size == "huge":
        return replace(arena, pages=HUGE_PAGES)
    raise ValueError(f"{SIZE_ENV}={size!r}: the arena is 'small' (64 pages) or 'huge' "
                     f"({HUGE_PAGES} pages)")


def for_space(space_end: int, size: str = "") -> Arena:
    """The arena of a process whose address space ends at `space_end`, of `size`."""
    for arena in ARENAS:
        if sized(arena, size).fits(space_end):
            return sized(arena, size)
    raise ValueError(f"no arena fits in an address space ending at {space_end:#x}")


def bigger_hint(pages: int) -> str:
    """What to add to "outside the arena" for an arena of `pages`: where a bigger one is."""
    return "" if pages >= HUGE_PAGES else f" ({SIZE_ENV}=huge gives {HUGE_PAGES} pages)"


def size_error() -> str | None:
    """What is wrong with MMFUZZ_ARENA, in one line; None when it names a size."""
    try:
        sized(HOST, os.environ.get(SIZE_ENV, ""))
    except ValueError as e:
        return str(e)
    return None


def space_end(maps: str) -> int:
    """The end of the highest user mapping in /proc/PID/maps text."""
    ends = (int(line.split(" ", 1)[0].split("-")[1], 16) for line in maps.splitlines() if line)
    return max((e for e in ends if e <= USER_HALF), default=0)


def running() -> Arena:
    """The arena of this process's kernel (`HOST` when /proc cannot tell), of the size
    MMFUZZ_ARENA asks for. A value that names no size gives 64 pages here; the command
    line refuses it first, in one line (`size_error`, cli/app.py)."""
    size = os.environ.get(SIZE_ENV, "")
    if size_error() is not None:
        size = ""
    try:
        with open(MAPS) as f:
            end = space_end(f.read())
    except OSError:
        return sized(HOST, size)
    return for_space(end, size) if end else sized(HOST, size)
