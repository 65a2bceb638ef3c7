"""Snapshot: what /proc shows of one process, and the parsers that build it (pure).

The reading (file descriptors, pread) is in `proc.py`; this half only turns
text and pagemap words into values, so the oracle and the tests can use it
without touching /proc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_FILE = 1 << 61  # file page or shared anonymous
PM_EXCLUSIVE = 1 << 56
PM_PFN_MASK = (1 << 55) - 1


@dataclass(frozen=True, slots=True)
class Vma:
    start: int
    end: int
    perms: str  # "rw-p"
    inode: int
    name: str
    rss: int  # bytes
    pss: int
    locked: int
    flags: frozenset[str]

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def lo(self) -> bool:
        return "lo" in self.flags

    @property
    def lf(self) -> bool:
        # Kernels from 4.4 to about 6.2 print VM_LOCKONFAULT as "??".
        return "lf" in self.flags or "??" in self.flags


@dataclass(frozen=True, slots=True)
class Snapshot:
    vmas: tuple[Vma, ...]  # the whole process, in address order
    vmlck: int  # status VmLck, bytes
    pagemap: tuple[int, ...]  # raw pagemap words, one per arena page
    zero_pfn: int  # PFN of the shared zero page (0 if unknown)

    def locked_size(self) -> int:
        """Invariant 2's right-hand side: total Size of all VM_LOCKED VMAs."""
        return sum(v.size for v in self.vmas if v.lo)


_HEADER = re.compile(
    r"([0-9a-f]+)-([0-9a-f]+) (\S{4}) [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ (\d+)\s*(.*)"
)
_KB = {"Rss:": "rss", "Pss:": "pss", "Locked:": "locked"}


def parse_smaps(text: str) -> tuple[Vma, ...]:
    vmas: list[Vma] = []
    head: re.Match[str] | None = None
    fields = {"rss": 0, "pss": 0, "locked": 0}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key in _KB:
            fields[_KB[key]] = int(rest.split()[0]) * 1024
        elif key == "VmFlags:":
            if head is None:
                raise ValueError("smaps: VmFlags before any VMA header")
            vmas.append(
                Vma(int(head[1], 16), int(head[2], 16), head[3], int(head[4]), head[5],
                    fields["rss"], fields["pss"], fields["locked"], frozenset(rest.split()))
            )
            fields = {"rss": 0, "pss": 0, "locked": 0}
        elif not key.endswith(":"):
            head = _HEADER.match(line)
            if head is None:
                raise ValueError(f"smaps: cannot read line {line!r}")
    return tuple(vmas)


def parse_vmlck(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1]) * 1024
    raise ValueError("status has no VmLck line")
