"""The choice table: where generation's randomness comes from, and its weights.

A `Source` is anything with the two FuzzedDataProvider methods generation uses:
`atheris.FuzzedDataProvider` in a campaign, `ByteSource` (pure, the same
interface) in tests and benchmarks. Every weighted table of what the generator
picks (calls, protections, flags, lengths that wrap, limits) lives here, so the
balance of a campaign is read and tuned in one place (pure).
"""


from __future__ import annotations

from typing import Protocol, TypeVar

from fuzzer.prog.program import (
    WRAP_MIN,
)
from fuzzer.prog.syscalls import (
    MADV_COLD,
    MADV_COLLAPSE,
    MADV_DOFORK,
    MADV_DONTDUMP,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_DONTNEED_LOCKED,
    MADV_FREE,
    MADV_GUARD_INSTALL,
    MADV_GUARD_REMOVE,
    MADV_HUGEPAGE,
    MADV_KEEPONFORK,
    MADV_NOHUGEPAGE,
    MADV_NORMAL,
    MADV_PAGEOUT,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
    MADV_RANDOM,
    MADV_REMOVE,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    MADV_WIPEONFORK,
    MAP_DENYWRITE,
    MAP_DROPPABLE,
    MAP_EXECUTABLE,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    MAP_STACK,
    MCL_CURRENT,
    MCL_FUTURE,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_READ,
    PROT_SEM,
    PROT_WRITE,
    U64,
)

T = TypeVar("T")


class Source(Protocol):
    def ConsumeIntInRange(self, lo: int, hi: int) -> int: ...

    def remaining_bytes(self) -> int: ...


class ByteSource:
    """A pure FuzzedDataProvider look-alike: consumes bytes from the front."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def ConsumeIntInRange(self, lo: int, hi: int) -> int:
        span = hi - lo
        if span <= 0:
            return lo
        width = (span.bit_length() + 7) // 8
        chunk = self.data[self.pos : self.pos + width]
        self.pos += width
        return lo + int.from_bytes(chunk.ljust(width, b"\0"), "little") % (span + 1)

    def remaining_bytes(self) -> int:
        return max(0, len(self.data) - self.pos)


def pick(src: Source, table: list[tuple[int, T]]) -> T:
    """A weighted choice: table rows are (weight, value)."""
    roll = src.ConsumeIntInRange(0, sum(w for w, _ in table) - 1)
    for weight, value in table:
        if roll < weight:
            return value
        roll -= weight
    raise AssertionError("unreachable")


def chance(src: Source, percent: int) -> bool:
    # An exhausted source reads as 0: that must mean "no", or short inputs would
    # switch every optional flag on at once.
    return src.ConsumeIntInRange(0, 99) >= 100 - percent


PROTS = [(25, PROT_READ | PROT_WRITE), (20, PROT_READ), (15, 0), (6, PROT_WRITE),
         (6, PROT_EXEC), (8, PROT_READ | PROT_EXEC), (6, PROT_READ | PROT_WRITE | PROT_EXEC),
         (2, PROT_READ | PROT_SEM), (1, PROT_READ | 0x10), (1, PROT_READ | PROT_GROWSDOWN),
         (1, PROT_READ | PROT_GROWSUP), (1, PROT_GROWSDOWN | PROT_GROWSUP)]
MAP_TYPE_CHOICES = [(60, MAP_PRIVATE), (36, MAP_SHARED), (2, 0), (2, MAP_SHARED_VALIDATE),
                    (6, MAP_DROPPABLE)]
PLACEMENT = [(55, MAP_FIXED), (25, MAP_FIXED_NOREPLACE), (5, MAP_FIXED | MAP_FIXED_NOREPLACE),
             (15, 0)]
EXTRA_MAP_FLAGS = [(30, MAP_POPULATE), (22, MAP_LOCKED), (10, MAP_NORESERVE),
                   (6, MAP_NONBLOCK), (3, MAP_STACK), (2, MAP_DENYWRITE | MAP_EXECUTABLE)]
MLOCK2_FLAGS = [(40, 0), (50, MLOCK_ONFAULT), (5, 2), (5, MLOCK_ONFAULT | 0x80)]
WRAPPING = [U64, U64 - PAGE + 1, (1 << 64) - PAGE, WRAP_MIN]
CALLS = [(22, "mmap"), (26, "touch"), (10, "mlock"), (10, "mlock2"), (8, "munlock"),
         (14, "mprotect"), (8, "munmap"), (10, "madvise"), (10, "mremap"), (3, "mlockall"),
         (3, "munlockall"), (2, "drop_cap_ipc_lock"), (3, "prlimit_memlock"), (4, "fork"),
         (5, "exit"), (7, "memfd_create"), (5, "tmpfile"), (8, "ftruncate"), (2, "close"),
         (6, "mseal"), (4, "process_madvise")]
# mseal's flags: 0, and rarely a reserved bit (EINVAL).
MSEAL_FLAGS = [(95, 0), (5, 1)]
# process_madvise: another process (when the caller knows one) or itself; how many
# iovecs count (the second mostly a range of its own; vlen 0, past two, and past
# UIO_MAXIOV rarely); the advice (another process takes only the first four: a few
# others for EINVAL; the caller itself anything madvise takes, 6.13+); the flags.
PMADV_OTHER = 55  # percent of calls naming another process, when the caller knows one
PMADV_VLEN = [(35, 1), (50, 2), (5, 0), (6, 3), (2, 1024), (2, 1025)]
PMADV_REMOTE = [(30, MADV_PAGEOUT), (25, MADV_COLD), (20, MADV_WILLNEED), (4, MADV_COLLAPSE),
                (4, MADV_DONTNEED), (3, MADV_FREE), (2, MADV_POPULATE_READ), (1, 99)]
PMADV_FLAGS = [(96, 0), (4, 1)]
# memfds: how often an mmap maps one (when one is open), its type, offset (mostly
# whole pages, a few unaligned, past any size, or negative) and ftruncate's sizes
# (around page edges, inside a page, 0, and rarely huge or negative).
FILE_MAP_TYPES = [(50, MAP_PRIVATE), (40, MAP_SHARED), (7, MAP_SHARED_VALIDATE), (3, 0),
                  (1, MAP_DROPPABLE)]
# The readahead advice a file mapping is given before its first read (Generator.file_mmap):
# what a page-cache miss on a file on disk reads depends on it (docs/SEMANTICS.md §21).
FILE_READ_ADVICE = [(4, MADV_RANDOM), (3, MADV_SEQUENTIAL), (2, MADV_NORMAL),
                    (1, MADV_WILLNEED)]
FILE_OFFSETS = [(50, "zero"), (42, "pages"), (3, "unaligned"), (3, "far"), (2, "negative")]
FILE_SIZES = [(35, "pages"), (15, "over"), (10, "under"), (12, "zero"), (15, "bytes"),
              (10, "same"), (2, "huge"), (1, "negative")]
MEMLOCK_LIMITS = [(3, 0), (6, 2 * PAGE), (6, 4 * PAGE), (6, 8 * PAGE), (4, 16 * PAGE),
                  (2, 8 << 20), (1, U64)]
MCL_CHOICES = [(30, MCL_CURRENT), (15, MCL_FUTURE), (10, MCL_CURRENT | MCL_FUTURE),
               (10, MCL_CURRENT | MCL_ONFAULT), (8, MCL_FUTURE | MCL_ONFAULT),
               (5, MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), (5, MCL_ONFAULT), (3, 0),
               (3, MCL_CURRENT | 0x8)]
MREMAP_CHOICES = [(30, 0), (30, MREMAP_MAYMOVE), (20, MREMAP_MAYMOVE | MREMAP_FIXED),
                  (8, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), (4, MREMAP_FIXED),
                  (3, MREMAP_DONTUNMAP), (3, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP),
                  (2, 0x8)]
# Mostly the advice with semantics to check; a few unused values for EINVAL. HUGEPAGE
# gives a VMA large folios where the host enables an mTHP size (docs/SEMANTICS.md §19);
# elsewhere it only splits VMAs. COLLAPSE finds no VMA of the arena big enough (§7).
# HWPOISON and SOFT_OFFLINE are never generated (nor accepted: see program.py).
MADV_CHOICES = [(12, MADV_DONTNEED), (8, MADV_DONTNEED_LOCKED), (6, MADV_FREE),
                (6, MADV_REMOVE), (5, MADV_DONTFORK), (4, MADV_DOFORK),
                (5, MADV_WIPEONFORK), (4, MADV_KEEPONFORK), (8, MADV_POPULATE_READ),
                (8, MADV_POPULATE_WRITE), (2, MADV_NORMAL), (2, MADV_WILLNEED),
                (2, MADV_COLD), (1, MADV_DONTDUMP), (10, MADV_HUGEPAGE), (2, MADV_NOHUGEPAGE),
                (6, MADV_GUARD_INSTALL), (3, MADV_GUARD_REMOVE), (6, MADV_PAGEOUT),
                (2, MADV_COLLAPSE), (2, 5), (1, 99)]
# madvise on a shared mapping (Generator.advice): the hole punch, guard regions, and the
# advice whose shmem side differs (DONTNEED keeps the cache, POPULATE fills it, PAGEOUT).
MADV_SHARED = [(20, MADV_REMOVE), (16, MADV_GUARD_INSTALL), (6, MADV_GUARD_REMOVE),
               (10, MADV_DONTNEED), (8, MADV_POPULATE_WRITE), (6, MADV_POPULATE_READ),
               (6, MADV_PAGEOUT), (4, MADV_FREE), (4, MADV_DONTNEED_LOCKED),
               (3, MADV_WIPEONFORK), (3, MADV_DONTFORK)]
# ... that has guard pages: what a guard marker meets there
MADV_GUARDED_SHARED = [(30, MADV_REMOVE), (10, MADV_GUARD_REMOVE), (10, MADV_DONTNEED),
                       (8, MADV_GUARD_INSTALL), (6, MADV_POPULATE_WRITE), (6, MADV_PAGEOUT),
                       (4, MADV_FREE), (4, MADV_DONTNEED_LOCKED)]
