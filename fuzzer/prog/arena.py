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

Why at import and not as a parameter: the model (fuzzer/model) binds the
arena's constants at import, in some twenty places, and is the reference
semantics, so `fuzzer/prog/program.py` selects `ARENA = running()` when it is
first imported and exports the constants derived from it (ARENA_BASE,
ARENA_PAGES, ARENA_SIZE, WRAP_MIN). The detection is a pure function of the
address space (`for_space`), tested on both kernels' values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fuzzer.prog.syscalls import PAGE

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


def for_space(space_end: int) -> Arena:
    """The arena of a process whose address space ends at `space_end`."""
    for arena in ARENAS:
        if arena.fits(space_end):
            return arena
    raise ValueError(f"no arena fits in an address space ending at {space_end:#x}")


def space_end(maps: str) -> int:
    """The end of the highest user mapping in /proc/PID/maps text."""
    ends = (int(line.split(" ", 1)[0].split("-")[1], 16) for line in maps.splitlines() if line)
    return max((e for e in ends if e <= USER_HALF), default=0)


def running() -> Arena:
    """The arena of this process's kernel; `HOST` when /proc cannot tell."""
    try:
        with open(MAPS) as f:
            end = space_end(f.read())
    except OSError:
        return HOST
    return for_space(end) if end else HOST
