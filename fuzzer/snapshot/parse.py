"""Snapshot: what /proc shows of one process, and the parsers that build it (pure).

The reading (file descriptors, pread) is in `proc.py`; this half only turns
text and pagemap words into values, so the oracle and the tests can use it
without touching /proc.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_FILE = 1 << 61  # file page or shared anonymous
PM_GUARD = 1 << 58  # PM_GUARD_REGION: a guard marker (6.15+)
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
    # bytes mapped by PMDs: AnonHugePages, and ShmemPmdMapped + FilePmdMapped (0 where a
    # kernel does not print them: every kernel since 5.4 does)
    anon_huge: int
    file_pmd: int

    # __init__, __eq__ and __hash__ are spelled out, as for the model's Attrs: the ones
    # @dataclass generates run interpreted in a mypyc build (about 1 µs a Vma, several
    # a step). tests/test_attrs_copies.py holds them to the generated ones.
    def __init__(self, start: int, end: int, perms: str, inode: int, name: str, rss: int,
                 pss: int, locked: int, flags: frozenset[str], anon_huge: int = 0,
                 file_pmd: int = 0) -> None:
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "perms", perms)
        object.__setattr__(self, "inode", inode)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "rss", rss)
        object.__setattr__(self, "pss", pss)
        object.__setattr__(self, "locked", locked)
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "anon_huge", anon_huge)
        object.__setattr__(self, "file_pmd", file_pmd)

    def _key(self) -> tuple[int, int, str, int, str, int, int, int, frozenset[str], int, int]:
        return (self.start, self.end, self.perms, self.inode, self.name, self.rss, self.pss,
                self.locked, self.flags, self.anon_huge, self.file_pmd)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vma):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

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
    # bit i set where arena page i's frame has PG_mlocked (/proc/kpageflags); -1 when
    # the flags were not read (fuzzer/observe/pageflags.py)
    mlocked: int

    # Spelled out as Vma's are (one Snapshot a step that changed what /proc shows).
    def __init__(self, vmas: tuple[Vma, ...], vmlck: int, pagemap: tuple[int, ...],
                 zero_pfn: int, mlocked: int = -1) -> None:
        object.__setattr__(self, "vmas", vmas)
        object.__setattr__(self, "vmlck", vmlck)
        object.__setattr__(self, "pagemap", pagemap)
        object.__setattr__(self, "zero_pfn", zero_pfn)
        object.__setattr__(self, "mlocked", mlocked)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return (self.vmas, self.vmlck, self.pagemap, self.zero_pfn, self.mlocked) == \
            (other.vmas, other.vmlck, other.pagemap, other.zero_pfn, other.mlocked)

    def __hash__(self) -> int:
        return hash((self.vmas, self.vmlck, self.pagemap, self.zero_pfn, self.mlocked))

    def locked_size(self) -> int:
        """Invariant 2's right-hand side: total Size of all VM_LOCKED VMAs."""
        return sum(v.size for v in self.vmas if v.lo)


# One match per VMA: the header, then Rss, Pss, Locked and VmFlags, which every
# kernel prints in this order. One findall is ~2.5x faster than a line loop,
# and smaps parsing is the largest cost of a checked step. The PMD-mapped sizes
# between Pss and Locked are read from the matched record after it (`_vma`).
_VMA = re.compile(
    r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+) *(.*)\n"
    r"(?:.*\n)*?Rss: +(\d+) kB\n(?:.*\n)*?Pss: +(\d+) kB\n"
    r"(?:.*\n)*?Locked: +(\d+) kB\n(?:.*\n)*?VmFlags: (.*)",
    re.M,
)


def parse_smaps(text: str) -> tuple[Vma, ...]:
    """Every VMA of an smaps text. Most of them are the same text at every step (the
    executor's own, an arena VMA nothing touched): each VMA's text is looked up
    first, and only a VMA not seen before goes through the regular expression."""
    pieces = _pieces(text)
    return tuple([_record_vma(pieces, k) for k in range(len(pieces) - 1)])


class SmapsParser:
    """parse_smaps for one process, read step after step: a VMA whose text is what it was
    in the text parsed last is that text's Vma, found without building and hashing its
    text. VMAs are matched by their place counted from the start, and from the end
    (a call that splits an arena VMA moves the executor's last VMAs down the list)."""

    def __init__(self) -> None:
        # the last text's pieces and Vmas, as one tuple: a parser that two threads share
        # reads and replaces them together
        self._last: tuple[list[str], list[Vma]] = ([], [])
        # parse_bytes's: the last text, where its records start, and their Vmas
        self._last_bytes: tuple[bytes, tuple[int, ...], tuple[Vma, ...]] = (b"", (), ())

    def parse(self, text: str) -> tuple[Vma, ...]:
        pieces = _pieces(text)
        last, last_vmas = self._last
        vmas: list[Vma] = []
        for k in range(len(pieces) - 1):
            # VMA k's text is the end of piece k and the first line of piece k+1: the
            # same two pieces at place k of the last text, or at its place from the end
            for j in (k, k - len(pieces) + len(last)):
                if 0 <= j < len(last) - 1 and pieces[k] == last[j] and \
                        pieces[k + 1] == last[j + 1]:
                    vmas.append(last_vmas[j])
                    break
            else:
                vmas.append(_record_vma(pieces, k))
        self._last = (pieces, vmas)
        return tuple(vmas)

    def parse_bytes(self, text: bytes, vmas_of: VmasOf) -> tuple[Vma, ...]:
        """`parse` of the undecoded text, by `vmas_of`: fuzzer/stepcalls.c's smaps_vmas,
        which finds the records, reuses the unchanged ones by the same rule as `parse`,
        and parses the others, in C (`parse` is its readable twin, and
        tests/test_parse_lookup.py holds the two together)."""
        last, bounds, last_vmas = self._last_bytes
        vmas, bounds = vmas_of(text, last, bounds, last_vmas, vma_of_fields)
        self._last_bytes = (text, bounds, vmas)
        return vmas


# stepcalls.c's smaps_vmas(text, last_text, last_bounds, last_vmas, make) -> (vmas, bounds)
VmasOf = Callable[[bytes, bytes, tuple[int, ...], tuple[Vma, ...], Callable[..., Vma]],
                  tuple[tuple[Vma, ...], tuple[int, ...]]]


def vma_of_fields(start: int, end: int, perms: str, inode: int, name: str, rss_kb: int,
                  pss_kb: int, locked_kb: int, flags: str, anon_huge_kb: int = 0,
                  file_pmd_kb: int = 0) -> Vma:
    """A Vma from the fields of its smaps record, as read (smaps_vmas's `make`)."""
    return Vma(start, end, perms, inode, name, rss_kb * 1024, pss_kb * 1024,
               locked_kb * 1024, _flag_set(flags), anon_huge_kb * 1024, file_pmd_kb * 1024)


def _pieces(text: str) -> list[str]:
    """"VmFlags: " ends each VMA's text: piece k holds the rest of VMA k-1's flags line,
    then VMA k up to its VmFlags (the last piece: the last flags line alone). So there is
    one VMA a "VmFlags: " by construction, and no count of them to check (a count of the
    whole text cost 1.5 % of a checked step); a VMA that lacks a field fails its
    regular expression in `_parse_one`."""
    return text.split("\nVmFlags: ")


def _record_vma(pieces: list[str], k: int) -> Vma:
    """VMA k of the pieces, from the cache of VMA texts seen before, or parsed."""
    body = pieces[k]
    if k:
        body = body[body.find("\n") + 1 :]  # after the previous VMA's flags
    after = pieces[k + 1]
    end = after.find("\n")
    record = body + "\nVmFlags: " + (after if end < 0 else after[:end])
    vma = _SEEN.get(record)
    if vma is None:
        vma = _parse_one(record)
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        _SEEN[record] = vma
    return vma


_SEEN: dict[str, Vma] = {}  # one VMA's smaps text -> its Vma
_SEEN_MAX = 4096


def _parse_one(record: str) -> Vma:
    """One VMA's smaps text, from its header to its VmFlags line."""
    found = _VMA.findall(record)
    if len(found) != 1:
        raise ValueError("smaps: a VMA lacks Rss, Pss, Locked or VmFlags")
    return _vma(found[0], record)


def parse_smaps_whole(text: str) -> tuple[Vma, ...]:
    """parse_smaps in one pass of the regular expression over the whole text, no
    lookups (the reference the tests hold parse_smaps to)."""
    vmas = tuple(_vma(m.groups(), m.group(0)) for m in _VMA.finditer(text))
    if len(vmas) != text.count("VmFlags:"):
        raise ValueError("smaps: a VMA lacks Rss, Pss, Locked or VmFlags")
    return vmas


# The PMD-mapped sizes, which lie between Pss and Locked (optional: `Vma.anon_huge`).
_PMD_FIELD = re.compile(r"^(AnonHugePages|ShmemPmdMapped|FilePmdMapped): +(\d+) kB$", re.M)


def _vma(fields: tuple[str, ...], record: str) -> Vma:
    """The Vma of a match of _VMA (`fields`) on `record`, the text it matched."""
    start, end, perms, inode, name, rss, pss, locked, flags = fields
    anon_huge = file_pmd = 0
    if "AnonHugePages" in record or "PmdMapped" in record:
        for key, kb in _PMD_FIELD.findall(record):
            if key == "AnonHugePages":
                anon_huge = int(kb)
            else:
                file_pmd += int(kb)
    return vma_of_fields(int(start, 16), int(end, 16), perms, int(inode), name, int(rss),
                         int(pss), int(locked), flags, anon_huge, file_pmd)


@functools.lru_cache(maxsize=1024)
def _flag_set(text: str) -> frozenset[str]:
    """A VmFlags line as a set (cached: the same few lines recur at every step)."""
    return frozenset(text.split())


def parse_vmlck(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1]) * 1024
    raise ValueError("status has no VmLck line")
