"""Reads /proc/PID/{smaps,status,pagemap} of a stopped child into a Snapshot.

The files are opened once per child and re-read from offset 0 at every step
(seq_file regenerates them) with pread, into one preallocated buffer: at a few
thousand steps a second the allocations and the syscalls matter. The reads are
made by fuzzer/stepcalls.c where it is built, else by their Python twins here
(`PyReads`), which do the same.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from functools import cache
from typing import Protocol

from fuzzer import stepcalls
from fuzzer.observe.pageflags import KPAGEFLAGS, PageFlags, own_pagemap_word
from fuzzer.observe.probe import huge_region_words, huge_zero_page
from fuzzer.prog import ARENA
from fuzzer.prog.arena import HUGE_PAGES, PMD_PAGES
from fuzzer.prog.syscalls import PAGE
from fuzzer.snapshot.parse import PM_PFN_MASK, PM_PRESENT, SmapsParser, Snapshot, Vma, parse_vmlck

_PAGEMAP_OFFSET = ARENA.base // PAGE * 8
VMLCK = b"VmLck:"  # the only line of status a Snapshot keeps


class Reads(Protocol):
    """Whole-file reads from offset 0 (stepcalls.c says what each does)."""

    def read_file(self, fd: int, /) -> bytes: ...
    def read_line(self, fd: int, prefix: bytes, /) -> str: ...
    def read_words(self, fd: int, offset: int, count: int, /) -> tuple[int, ...]: ...


class PyReads:
    """The Python twins of stepcalls.c's reads, into one buffer grown as a file needs."""

    def __init__(self) -> None:
        self._buf = bytearray(1 << 16)
        self._view = memoryview(self._buf)

    def _whole(self, fd: int) -> int:
        """The whole file, read from offset 0 into the buffer: its length."""
        # preadv at explicit offsets: no lseek back to 0 first (seq_file restarts the
        # file at offset 0 and goes on from where the last read ended).
        got = 0
        while True:
            if got == len(self._buf):
                self._view.release()  # a bytearray with a view cannot grow
                self._buf += bytes(len(self._buf))
                self._view = memoryview(self._buf)
            n = os.preadv(fd, [self._view[got:]], got)
            if n == 0:
                return got
            got += n

    def read_file(self, fd: int, /) -> bytes:
        n = self._whole(fd)  # first: it may grow the buffer, and replace the view
        return bytes(self._view[:n])

    def read_line(self, fd: int, prefix: bytes, /) -> str:
        """The file's first line that starts with `prefix`, without its newline (the whole
        text if no line does)."""
        n = self._whole(fd)
        if self._buf.startswith(prefix, 0, n):
            i = 0
        elif (i := self._buf.find(b"\n" + prefix, 0, n) + 1) == 0:
            return str(self._view[:n], "utf-8")
        j = self._buf.find(b"\n", i, n)
        return str(self._view[i : j if j >= 0 else n], "utf-8")

    def read_words(self, fd: int, offset: int, count: int, /) -> tuple[int, ...]:
        """`count` 64-bit words read at `offset` in one pread (EIO if fewer are)."""
        data = os.pread(fd, count * 8, offset)
        if len(data) != count * 8:
            raise OSError(5, os.strerror(5))
        return struct.unpack(f"<{count}Q", data)


# The reads every Observer makes (a module global: tests/test_stepcalls.py swaps it).
READS: Reads = stepcalls.load() or PyReads()


class ObserveError(OSError):
    """/proc could not be read (the process is gone, or we lack privilege)."""


class Observer:
    """Snapshots of one process; use as a context manager."""

    def __init__(self, pid: int, parser: SmapsParser | None = None,
                 flags: PageFlags | None = None) -> None:
        """`parser`: one that parsed another process's smaps before (a process of the
        last program, forked from the same server, shows most VMAs as this one will).
        `flags`: the reader `with_flags` uses for the arena pages' PG_mlocked (given only
        where the executor drains its CPU before each stop: fuzzer/observe/pageflags.py)."""
        self.pid = pid
        self._flags = flags
        self._fds: list[int] = []
        self._last: Snapshot | None = None  # the last snapshot, and the smaps it was read from
        self._last_smaps = b""
        self._parser = parser or SmapsParser()

    def __enter__(self) -> Observer:
        # Opened here, not in __init__, and closed on *any* exception (a budget
        # alarm may land in the middle): no descriptor outlives the with block.
        try:
            for name in ("smaps", "status", "pagemap"):
                self._fds.append(os.open(f"/proc/{self.pid}/{name}", os.O_RDONLY))
        except BaseException as e:
            self.close()
            if isinstance(e, OSError):
                msg = f"cannot open /proc/{self.pid}: {e.strerror}"
                raise ObserveError(e.errno, msg) from None
            raise
        self._smaps, self._status, self._pagemap = self._fds
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.pop())

    def _parse(self, smaps: bytes) -> tuple[Vma, ...]:
        vmas_of = getattr(READS, "smaps_vmas", None)  # stepcalls.c's; PyReads has none
        if vmas_of is not None:
            return self._parser.parse_bytes(smaps, vmas_of)
        return self._parser.parse(str(smaps, "utf-8"))

    def pagemap(self) -> tuple[int, ...]:
        """The arena's pagemap words alone."""
        try:
            return _folded(READS.read_words(self._pagemap, _PAGEMAP_OFFSET, ARENA.pages))
        except OSError as e:
            raise ObserveError(e.errno, f"reading /proc/{self.pid}: {e.strerror}") from None

    def snapshot(self) -> Snapshot:
        """What /proc shows now (PG_mlocked left unread: `with_flags`). When smaps, VmLck
        and pagemap read exactly as they did at the last snapshot (a call that failed,
        a touch of a present page: about half the steps), that Snapshot is returned
        again, the same object: the text is not decoded or parsed a second time."""
        try:
            smaps = READS.read_file(self._smaps)
            status = READS.read_line(self._status, VMLCK)
            words = _folded(READS.read_words(self._pagemap, _PAGEMAP_OFFSET, ARENA.pages))
        except OSError as e:
            raise ObserveError(e.errno, f"reading /proc/{self.pid}: {e.strerror}") from None
        vmlck, last = parse_vmlck(status), self._last
        if last is not None and smaps == self._last_smaps and words == last.pagemap:
            if vmlck == last.vmlck:
                return last
            vmas = last.vmas
        else:
            vmas = self._parse(smaps)
        self._last, self._last_smaps = Snapshot(vmas, vmlck, words, zero_pfn()), smaps
        return self._last

    @property
    def reads_flags(self) -> bool:
        return self._flags is not None

    def with_flags(self, snap: Snapshot, pages: int) -> Snapshot:
        """`snap` with the PG_mlocked of the arena pages in the bit mask `pages` read now
        (the others' bits 0); `snap` itself where the flags are not read. Read afresh
        every time: another process's call can change them (a frame two processes
        share) while this one's text stays the same."""
        if self._flags is None:
            return snap
        try:
            mlocked = self._flags.mlocked(snap.pagemap, snap.zero_pfn, pages)
        except OSError as e:
            raise ObserveError(e.errno, f"reading {KPAGEFLAGS}: {e.strerror}") from None
        return Snapshot(snap.vmas, snap.vmlck, snap.pagemap, snap.zero_pfn, mlocked)


def _folded(words: tuple[int, ...]) -> tuple[int, ...]:
    """pagemap words with each page of the huge zero page given the zero page's PFN: both
    are the zero page to the oracle ("Z"), and neither is ever mlocked. Only the huge
    arena can map the huge zero page (a PMD, docs/SEMANTICS.md §22)."""
    first = huge_zero_pfn()
    if not first:
        return words
    zero = zero_pfn()
    out = None
    for i, w in enumerate(words):
        if w & PM_PRESENT and 0 <= (w & PM_PFN_MASK) - first < PMD_PAGES:
            out = out or list(words)
            out[i] = w & ~PM_PFN_MASK | zero
    return words if out is None else tuple(out)


@cache
def huge_zero_pfn() -> int:
    """The first PFN of the huge zero page, from a read fault in a huge-page region of our
    own (`probe.huge_region_words`); 0 outside the huge arena, where no PFNs are shown,
    where THP or `use_zero_page` is off, or where the fault mapped no PMD. A process
    that has mapped it holds a reference until it exits (MMF_HUGE_ZERO_FOLIO), so the PFN
    stays the same for as long as we run."""
    if ARENA.pages < HUGE_PAGES or not zero_pfn() or not huge_zero_page():
        return 0
    words = huge_region_words(write=False)
    if words is None:
        return 0
    head, tail = words
    pfn = head & PM_PFN_MASK
    # a PMD: the next page is mapped too, by the next frame (one read fault, no PTE path)
    if head & tail & PM_PRESENT and tail & PM_PFN_MASK == pfn + 1 and pfn != zero_pfn():
        return pfn
    return 0


@cache
def zero_pfn() -> int:
    """PFN of the shared zero page, from a read fault in our own address space.

    PFNs are shown only to CAP_SYS_ADMIN; without it this returns 0 and the
    oracle tells the zero page apart by its pagemap bits alone.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, PAGE, mmap.PROT_READ, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        return 0
    try:
        ctypes.c_char.from_address(addr).value  # noqa: B018 -- the read fault maps the zero page
        word = own_pagemap_word(addr)
    finally:
        libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(PAGE))
    return word & PM_PFN_MASK if word & PM_PRESENT else 0
