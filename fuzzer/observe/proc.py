"""Reads /proc/PID/{smaps,status,pagemap} of a stopped child into a Snapshot.

The files are opened once per child and re-read from offset 0 at every step
(seq_file regenerates them) with pread, into one preallocated buffer: at a few
hundred steps a second the allocations and the syscalls matter.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from functools import cache

from fuzzer.observe.pageflags import KPAGEFLAGS, PageFlags, own_pagemap_word
from fuzzer.prog import ARENA
from fuzzer.prog.syscalls import PAGE
from fuzzer.snapshot.parse import PM_PFN_MASK, PM_PRESENT, SmapsParser, Snapshot, Vma, parse_vmlck

_PAGEMAP = struct.Struct(f"<{ARENA.pages}Q")
_PAGEMAP_OFFSET = ARENA.base // PAGE * 8


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
        self._buf = bytearray(1 << 16)  # grows when a file is longer (_read)
        self._view = memoryview(self._buf)
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

    def _read(self, fd: int) -> memoryview:
        """The whole file, read from offset 0 into the buffer: a view of its bytes
        (valid until the next read)."""
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
                return self._view[:got]
            got += n

    def _vmlck_line(self) -> str:
        """status's VmLck line alone, decoded: the only line of it a Snapshot keeps (the
        whole text if it has none, for parse_vmlck's error)."""
        data = self._read(self._status)
        i = self._buf.find(b"\nVmLck:", 0, len(data))
        if i < 0:
            return str(data, "utf-8")
        j = self._buf.find(b"\n", i + 1, len(data))
        return str(data[i + 1 : j if j >= 0 else len(data)], "utf-8")

    def _parse(self, smaps: bytes) -> tuple[Vma, ...]:
        return self._parser.parse(str(smaps, "utf-8"))

    def pagemap(self) -> tuple[int, ...]:
        """The arena's pagemap words alone."""
        try:
            return _PAGEMAP.unpack(os.pread(self._pagemap, _PAGEMAP.size, _PAGEMAP_OFFSET))
        except OSError as e:
            raise ObserveError(e.errno, f"reading /proc/{self.pid}: {e.strerror}") from None

    def snapshot(self) -> Snapshot:
        """What /proc shows now (PG_mlocked left unread: `with_flags`). When smaps, VmLck
        and pagemap read exactly as they did at the last snapshot (a call that failed,
        a touch of a present page: about half the steps), that Snapshot is returned
        again, the same object: the text is not decoded or parsed a second time."""
        try:
            smaps = bytes(self._read(self._smaps))
            status = self._vmlck_line()
            words = _PAGEMAP.unpack(os.pread(self._pagemap, _PAGEMAP.size, _PAGEMAP_OFFSET))
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
