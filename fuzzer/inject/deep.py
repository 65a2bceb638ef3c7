"""Deep injections: emulated kernel bugs that fire only after several ordered calls agree.

Each one checks its preconditions (a split or moved VMA, a lowered RLIMIT_MEMLOCK
without CAP_IPC_LOCK, MCL_FUTURE at fork, ...) through the read-only views of
`call.process` and its own per-process notes, and does nothing otherwise. Like the
shallow catalogue, they use only the public API of `fuzzer.inject.api`.
"""

from __future__ import annotations

import resource

from fuzzer.inject.api import EntryAction, ExitAction, Extra, Injection, Skip, Syscall, Then
from fuzzer.inject.process import Process
from fuzzer.prog.syscalls import (
    MADV_POPULATE_WRITE,
    MADV_RANDOM,
    MADV_WILLNEED,
    MCL_FUTURE,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    MREMAP_MAYMOVE,
    PAGE,
    PROT_WRITE,
    is_errno,
)

PM_PRESENT = 1 << 63


def _pages(length: int) -> int:
    return (length + PAGE - 1) // PAGE


def _split_at(call: Syscall) -> set[tuple[int, int]]:
    """After a successful munlock: the (pid, address) edges where it split a locked VMA
    (the neighbour across the edge stays locked)."""
    addr = call.args["addr"] // PAGE * PAGE
    end = call.args["addr"] + _pages(call.args["len"]) * PAGE
    return {(call.pid, edge) for edge, beyond in ((addr, addr - PAGE), (end, end))
            if call.process.lock_at(beyond) in ("locked", "onfault")}


def _was_split(splits: set[tuple[int, int]], call: Syscall) -> bool:
    """Whether the mremap's old range starts or ends at an edge an earlier munlock split."""
    old, old_len = call.args["old"], _pages(call.args["old_len"]) * PAGE
    return (call.pid, old) in splits or (call.pid, old + old_len) in splits


class ForkInheritsMclFuture(Injection):
    name = "fork-inherits-mcl-future"
    deep = True
    description = ("A fork child of a process that ran mlockall(MCL_FUTURE) inherits it: "
                   "mappings the child creates after fork are locked (and populated).")
    source = ("hypothetical, modelled on mm_init() in kernel/fork.c, which keeps only "
              "VM_INIT_DEF_MASK of the parent's mm->def_flags, so VM_LOCKED/VM_LOCKONFAULT "
              "from MCL_FUTURE are not inherited (mlockall(2): 'not inherited by a child')")

    def on_fork(self, parent: Process, child: Process) -> Then | None:
        future = parent.mcl_future
        if future == "unlocked":
            return None
        flags = MCL_FUTURE | (MCL_ONFAULT if future == "onfault" else 0)
        return Then((Extra("mlockall", (flags,)),))


class _AfterSplit(Injection):
    """Base of the injections that act when mremap takes a range at an edge an earlier
    munlock split (a helper, not an injection: its name starts with `_`)."""

    def __init__(self) -> None:
        self._split: set[tuple[int, int]] = set()

    def _mremap_of_split(self, call: Syscall, result: int) -> bool:
        """Track munlock's splits; whether `call` is an mremap that succeeded on a range
        starting or ending at one."""
        if call.name == "munlock" and result == 0:
            self._split |= _split_at(call)
            return False
        return call.name == "mremap" and not is_errno(result) and _was_split(self._split, call)


class MremapGrowSplitOnfault(_AfterSplit):
    name = "mremap-grow-split-onfault"
    deep = True
    description = ("Growing in place a locked VMA that an earlier partial munlock split off "
                   "leaves the grown tail lock-on-fault and unpopulated instead of locked "
                   "and populated, so VmLck disagrees with the pages present.")
    source = ("hypothetical, modelled on mremap's growth path (vma_expand() then "
              "mm->locked_vm += and mm_populate() of the new part in mremap_to/"
              "move_vma): the populate skipped when the VMA came from a split")

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        if not self._mremap_of_split(call, result):
            return None
        old_len = _pages(call.args["old_len"]) * PAGE
        new_len = _pages(call.args["new_len"]) * PAGE
        if result != call.args["old"] or old_len == 0 or new_len <= old_len:
            return None
        if call.process.lock_at(result) != "locked":
            return None
        tail = (result + old_len, new_len - old_len)
        return Then((Extra("munlock", tail), Extra("mlock2", (*tail, MLOCK_ONFAULT))))


class Mlock2OnfaultOverLimit(Injection):
    name = "mlock2-onfault-over-limit"
    deep = True
    description = ("Without CAP_IPC_LOCK and under a finite RLIMIT_MEMLOCK, mlock2("
                   "MLOCK_ONFAULT) over a range already partly locked returns 0 where it "
                   "must fail for exceeding the limit (the range stays as it was).")
    source = ("hypothetical, modelled on count_mm_mlocked_page_nr() in mm/mlock.c "
              "(do_mlock): the already-locked part subtracted twice, so the limit check "
              "passes, then the failure is lost on the on-fault path")

    def __init__(self) -> None:
        self._partly: dict[int, bool] = {}

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mlock2" and call.args["flags"] & 0xFFFFFFFF == MLOCK_ONFAULT:
            start, n = call.args["addr"] // PAGE * PAGE, min(_pages(call.args["len"]), 64)
            locks = [call.process.lock_at(start + i * PAGE) for i in range(n)]
            self._partly[call.pid] = "locked" in locks or "onfault" in locks
        return None

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        partly = self._partly.pop(call.pid, False)
        if call.name != "mlock2" or not partly or result not in (-12, -11):  # ENOMEM, EAGAIN
            return None
        soft, _ = call.process.memlock
        if soft == resource.RLIM_INFINITY or call.process.cap_ipc_lock:
            return None
        return 0


class MprotectMovedOnfaultPopulates(Injection):
    name = "mprotect-moved-onfault-populates"
    deep = True
    description = ("mprotect() making writable a lock-on-fault range that mremap moved "
                   "populates it like plain mlock(): every page is faulted in for write.")
    source = ("hypothetical, modelled on mprotect_fixup() in mm/mprotect.c, which populates "
              "only VM_LOCKED VMAs without VM_LOCKONFAULT (populate_vma_page_range); here "
              "the VM_LOCKONFAULT test is lost on a VMA copied by copy_vma() in move_vma()")

    def __init__(self) -> None:
        self._moved: dict[int, list[tuple[int, int]]] = {}

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        if call.name == "mremap" and not is_errno(result) and result != call.args["old"]:
            self._moved.setdefault(call.pid, []).append(
                (result, result + _pages(call.args["new_len"]) * PAGE))
            return None
        if call.name != "mprotect" or result != 0 or not call.args["prot"] & PROT_WRITE:
            return None
        addr = call.args["addr"]
        if not any(lo <= addr < hi for lo, hi in self._moved.get(call.pid, ())):
            return None
        if call.process.lock_at(addr) != "onfault":
            return None
        return Then((Extra("madvise", (addr, call.args["len"], MADV_POPULATE_WRITE)),))


class MunmapInsideOnfaultKept(Injection):
    name = "munmap-inside-onfault-kept"
    deep = True
    description = ("munmap() strictly inside a lock-on-fault VMA that has a page faulted in "
                   "returns 0 but unmaps nothing: the pages stay mapped and counted in VmLck.")
    source = ("hypothetical, modelled on vms_gather_munmap_vmas() in mm/vma.c (the split "
              "of a VM_LOCKED VMA and mm->locked_vm -= its pages): the middle of a "
              "VM_LOCKONFAULT VMA neither detached nor uncounted")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name != "munmap" or call.args["addr"] % PAGE:
            return None
        addr, n = call.args["addr"], _pages(call.args["len"])
        if n == 0 or n > 64:
            return None
        edges = (addr - PAGE, addr, addr + n * PAGE)
        if any(call.process.lock_at(a) != "onfault" for a in edges):
            return None
        if not any(w & PM_PRESENT for w in call.pagemap(addr, n)):
            return None
        return Skip(0)


class MremapMoveSplitLocks(_AfterSplit):
    name = "mremap-move-split-locks"
    deep = True
    description = ("Moving with mremap a lock-on-fault VMA that a partial munlock split "
                   "makes it fully locked at the new place: VM_LOCKONFAULT is dropped and "
                   "every page is populated.")
    source = ("hypothetical, modelled on move_vma() in mm/mremap.c: copy_vma() of a VMA "
              "produced by split_vma() losing VM_LOCKONFAULT from vm_flags, so "
              "mm_populate() locks the whole new range")

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        if (not self._mremap_of_split(call, result) or result == call.args["old"]
                or not call.args["flags"] & MREMAP_MAYMOVE):
            return None
        if call.process.lock_at(result) != "onfault":
            return None
        return Then((Extra("mlock", (result, _pages(call.args["new_len"]) * PAGE)),))


class RandomAdviceReadsAround(Injection):
    name = "random-advice-reads-around"
    deep = True  # a file on disk, mapped, advised MADV_RANDOM, then read by a fault
    description = ("madvise(MADV_RANDOM) sets VM_RAND_READ (smaps shows rr), but a file's "
                   "faults still read around: the first read fault in the range reads its "
                   "neighbours into the page cache, and fault-around maps them, where the "
                   "page alone must be read and mapped. Emulated by reading the advised range "
                   "into the cache at once (MADV_WILLNEED), as that read-around would.")
    source = ("hypothetical: do_sync_mmap_readahead() (mm/filemap.c) losing its "
              "VM_RAND_READ case, as a reordering of its cases might (6.18 reordered them "
              "for exec memory: \"mm/filemap: allow arch to request folio size for exec "
              "memory\"); needs tmpfile's files on disk (docs/SEMANTICS.md §21)")

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        if call.name == "madvise" and result == 0 \
                and call.args["advice"] & 0xFFFFFFFF == MADV_RANDOM:
            return Then((Extra("madvise", (call.args["addr"], call.args["len"],
                                           MADV_WILLNEED)),))
        return None


DEEP: tuple[type[Injection], ...] = (
    ForkInheritsMclFuture, MremapGrowSplitOnfault, Mlock2OnfaultOverLimit,
    MprotectMovedOnfaultPopulates, MunmapInsideOnfaultKept, MremapMoveSplitLocks,
    RandomAdviceReadsAround,
)
