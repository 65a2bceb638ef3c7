"""Reads the PG_mlocked flag of the pages a process maps, from /proc/kpageflags.

pagemap gives root each present page's frame number (PFN); /proc/kpageflags holds
one u64 of flags per PFN, bit 33 `KPF_MLOCKED` (fs/proc/page.c `stable_page_flags`).
The model predicts which pages must and must not carry it (fuzzer/model/mlocked.py,
docs/SEMANTICS.md §20); this module only reads it, for the pages the model judges
(a frame's flags cost one pread: the frames of a process's pages lie far apart).

The kernel clears PG_mlocked through a per-CPU batch (mm/mlock.c `munlock_folio`),
which `lru_add_drain()` empties: the executor drains its CPU before every marker
(a MADV_POPULATE_READ of its own page), so what is read here is settled. Without
markers (PTRACE_SYSCALL stepping, for injections) there is no drain and the flags
are not read.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from functools import cache

from fuzzer.prog.syscalls import PAGE
from fuzzer.snapshot.parse import PM_PFN_MASK, PM_PRESENT

KPAGEFLAGS = "/proc/kpageflags"
KPF_MLOCKED = 1 << 33
_WORD = 8
_RUN = 64  # PFNs at most this far apart are read with one pread


class PageFlags:
    """One descriptor of /proc/kpageflags for the whole process (it is global)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def mlocked(self, words: tuple[int, ...], zero_pfn: int, pages: int = -1) -> int:
        """Bit i set where arena page i (pagemap word i) is one of `pages` (a bit mask),
        present, not the zero page, and its frame has PG_mlocked."""
        # the set bits of the mask, lowest first (a few pages are judged, of 64)
        mask = pages & ((1 << len(words)) - 1)
        pfns = []
        while mask:
            low = mask & -mask
            mask ^= low
            i = low.bit_length() - 1
            w = words[i]
            if w & PM_PRESENT and w & PM_PFN_MASK not in (0, zero_pfn):
                pfns.append((w & PM_PFN_MASK, i))
        if not pfns:
            return 0
        pfns.sort()
        out = 0
        j = 0
        while j < len(pfns):
            first = pfns[j][0]
            k = j + 1
            while k < len(pfns) and pfns[k][0] - first < _RUN:
                k += 1
            last = pfns[k - 1][0]
            data = os.pread(self._fd, (last - first + 1) * _WORD, first * _WORD)
            for pfn, i in pfns[j:k]:
                at = (pfn - first) * _WORD
                if int.from_bytes(data[at:at + _WORD], "little") & KPF_MLOCKED:
                    out |= 1 << i
            j = k
        return out


@cache
def page_flags() -> PageFlags | None:
    """The reader, or None where the flags cannot be read or mean nothing: no
    /proc/kpageflags (a kernel without CONFIG_PROC_PAGE_MONITOR), no privilege to open
    it, PFNs hidden, or a page this process locks not shown mlocked (`shows_mlock`: in
    User-Mode Linux 6.1 the file ends at `max_pfn`, which it sets to a page count, before
    most pages)."""
    from fuzzer.observe.proc import zero_pfn  # proc imports this module

    if zero_pfn() == 0:  # pagemap shows no PFNs to this process
        return None
    try:
        fd = os.open(KPAGEFLAGS, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    flags = PageFlags(fd)
    try:
        if shows_mlock(flags):
            return flags
    except OSError:
        pass
    os.close(fd)
    return None


def shows_mlock(flags: PageFlags) -> bool:
    """Whether a page of our own that mlock populated reads as mlocked (mlock_folio sets
    the flag at once: no batch to wait for)."""
    page = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mlock(ctypes.c_void_p(addr), ctypes.c_size_t(PAGE)) != 0:
            return False
        try:
            return flags.mlocked((own_pagemap_word(addr),), 0) == 1
        finally:
            libc.munlock(ctypes.c_void_p(addr), ctypes.c_size_t(PAGE))
    finally:
        del addr
        page.close()


def own_pagemap_word(addr: int) -> int:
    """This process's pagemap word of the page at `addr`."""
    fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    try:
        (word,) = struct.unpack("<Q", os.pread(fd, _WORD, addr // PAGE * _WORD))
    finally:
        os.close(fd)
    return int(word)
