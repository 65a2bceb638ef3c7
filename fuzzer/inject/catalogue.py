"""The catalogue of named injections: real kernel bugs and old behaviours, replayed.

Each emulates, at the syscall boundary, what a kernel with that bug did, using
only the public API of `fuzzer.inject.api` (a plug-in can do all of this).
The description says what the buggy kernel does; `source` where it comes from.
"""

from __future__ import annotations

from fuzzer.inject.api import (
    EntryAction,
    ExitAction,
    Extra,
    Injection,
    Replace,
    Rewrite,
    Skip,
    Syscall,
    Then,
)
from fuzzer.inject.deep import DEEP
from fuzzer.inject.process import Process
from fuzzer.prog import ARENA
from fuzzer.prog.syscalls import (
    ENOMEM,
    EPERM,
    MADV_DONTNEED_LOCKED,
    MADV_GUARD_REMOVE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_PAGEOUT,
    MADV_POPULATE_READ,
    MADV_REMOVE,
    MAP_ANONYMOUS,
    MAP_DROPPABLE,
    MAP_FIXED_NOREPLACE,
    MAP_LOCKED,
    MAP_POPULATE,
    MAP_TYPE,
    MCL_CURRENT,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    PAGE,
    is_errno,
)

PM_PRESENT, PM_FILE, PM_EXCLUSIVE = 1 << 63, 1 << 61, 1 << 56


class PopulateNeedsLock(Injection):
    name = "populate-needs-lock"
    description = ("mmap(MAP_POPULATE) without MAP_LOCKED populates nothing: the flag is "
                   "dropped unless the mapping is also locked. Nothing fails; the pages are "
                   "simply not there.")
    source = ("VM_LOCKONFAULT series v6 (linux-mm, July 2015): the reworked populate logic "
              "only populated VM_LOCKED mappings; found in review, fixed before merging "
              "(v4.4, commit b0f205c2a308 introduced MLOCK_ONFAULT)")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mmap":
            flags = call.args["flags"]
            if flags & MAP_POPULATE and not flags & MAP_LOCKED:
                return Rewrite(flags=flags & ~MAP_POPULATE)
        return None


class MlockallOnfaultAccepted(Injection):
    name = "mlockall-onfault-accepted"
    description = ("mlockall(MCL_ONFAULT) alone returns 0 and unlocks every VMA (and cancels "
                   "MCL_FUTURE), where it must fail with EINVAL.")
    source = ("'mm/mlock.c: mlockall error for flag MCL_ONFAULT' (Stefan Potyra, 2019): "
              "apply_mlockall_flags() with only MCL_ONFAULT cleared every lock")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mlockall" and call.args["flags"] & 0xFFFFFFFF == MCL_ONFAULT:
            return Replace("munlockall")
        return None


class Mlock2OnfaultIgnored(Injection):
    name = "mlock2-onfault-ignored"
    description = ("mlock2(MLOCK_ONFAULT) behaves as plain mlock(): the range is populated "
                   "at once and VM_LOCKONFAULT is not set.")
    source = ("the lock-on-fault contract of commit b0f205c2a308 ('mm: mlock: add mlock flags "
              "to enable VM_LOCKONFAULT usage', v4.4) broken: MLOCK_ONFAULT dropped on the way")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mlock2" and call.args["flags"] & 0xFFFFFFFF == MLOCK_ONFAULT:
            return Rewrite(flags=0)
        return None


class MunlockSkipped(Injection):
    name = "munlock-skipped"
    description = "munlock() returns 0 but leaves the range locked (VM_LOCKED stays, VmLck too)."
    source = ("the class of munlock-path regressions around the 2022 mlock rework ('mm/munlock: "
              "rework of mlock+munlock page handling', v5.18): success reported, lock kept")

    def on_entry(self, call: Syscall) -> EntryAction:
        return Skip(0) if call.name == "munlock" else None


class MremapGrowUnlocked(Injection):
    name = "mremap-grow-unlocked"
    description = ("Growing a locked mapping with mremap leaves the new part unlocked: the tail "
                   "is neither VM_LOCKED nor counted in VmLck.")
    source = ("mm/mremap.c keeps VM_LOCKED across growth and accounts locked_vm for the delta "
              "(vma_to_resize / mremap_to locked_vm handling); emulated here by unlocking the "
              "grown tail after the call")

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        if call.name != "mremap" or is_errno(result):
            return None
        old_len = (call.args["old_len"] + PAGE - 1) // PAGE * PAGE
        new_len = (call.args["new_len"] + PAGE - 1) // PAGE * PAGE
        if new_len <= old_len or old_len == 0:
            return None
        return Then((Extra("munlock", (result + old_len, new_len - old_len)),))


class FixedNoreplaceAsHint(Injection):
    name = "fixed-noreplace-as-hint"
    description = ("MAP_FIXED_NOREPLACE is an unknown flag: the address is only a hint, so a "
                   "collision gives a mapping elsewhere instead of EEXIST.")
    source = ("kernels before 4.17 ('mm: introduce MAP_FIXED_NOREPLACE', Michal Hocko, v4.17); "
              "mmap(2): older kernels 'will typically ... fall back to a non-MAP_FIXED type of "
              "behavior'")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mmap" and call.args["flags"] & MAP_FIXED_NOREPLACE:
            return Rewrite(flags=call.args["flags"] & ~MAP_FIXED_NOREPLACE)
        return None


class MmapLen0Accepted(Injection):
    name = "mmap-len0-accepted"
    description = "mmap() with length 0 succeeds and returns addr, creating no mapping."
    source = ("kernels before 2.6.12; mmap(2) BUGS: 'in kernels before 2.6.12, mmap() succeeded "
              "in this case: no mapping was created and the call returned addr'")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mmap" and call.args["len"] == 0:
            return Skip(call.args["addr"])
        return None


class MprotectLockedNoCow(Injection):
    name = "mprotect-locked-no-cow"
    description = ("Making a locked, private, read-only mapping writable does not break COW: "
                   "zero pages stay zero pages and absent pages stay absent.")
    source = ("before 'mm: fix mprotect() behaviour on VM_LOCKED VMAs' (Kirill A. Shutemov, "
              "2016), which added the populate_vma_page_range() call to mprotect_fixup()")

    def __init__(self) -> None:
        self._before: dict[int, list[int]] = {}

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mprotect" and call.args["addr"] % PAGE == 0:
            pages = min((call.args["len"] + PAGE - 1) // PAGE, 64)
            self._before[call.pid] = call.pagemap(call.args["addr"], pages)
        return None

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        before = self._before.pop(call.pid, None)
        if call.name != "mprotect" or before is None or result != 0:
            return None
        after = call.pagemap(call.args["addr"], len(before))
        extras: list[Extra] = []
        for i, (old, new) in enumerate(zip(before, after, strict=True)):
            became_anon = new & PM_PRESENT and new & PM_EXCLUSIVE and not new & PM_FILE
            was_anon = old & PM_PRESENT and old & PM_EXCLUSIVE
            if became_anon and not was_anon:
                addr = call.args["addr"] + i * PAGE
                extras.append(Extra("madvise", (addr, PAGE, MADV_DONTNEED_LOCKED)))
                if old & PM_PRESENT:  # it was the zero page: map it back
                    extras.append(Extra("madvise", (addr, PAGE, MADV_POPULATE_READ)))
        return Then(tuple(extras)) if extras else None


# How far the seal injections look along a range, in pages (the arena is smaller).
_SEAL_SCAN = 64


def _run(call: Syscall, addr: int, length: int, sealed: bool) -> int:
    """Bytes from `addr` (at most `length`) mapped in VMAs whose seal is `sealed`."""
    n = 0
    while n * PAGE < length and n < _SEAL_SCAN:
        flags = call.process.flags_at(addr + n * PAGE)
        if flags is None or ("sl" in flags) != sealed:
            break
        n += 1
    return n * PAGE


class MsealHoleSealsHead(Injection):
    name = "mseal-hole-seals-head"
    description = ("mseal() of a range with a hole seals the VMAs before the hole, then fails "
                   "with ENOMEM: the range is not checked for holes before anything is sealed.")
    source = ("hypothetical: mseal_apply() walking the VMAs without range_contains_unmapped() "
              "first (mm/mseal.c), the way mprotect and madvise treat a hole")

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        if call.name != "mseal" or result != -ENOMEM or call.args["addr"] % PAGE:
            return None
        addr, length = call.args["addr"], call.args["len"]
        head = _run(call, addr, length, sealed=False)
        return Then((Extra("mseal", (addr, head, 0)),)) if head else None


class MunmapSealedUnmapsHead(Injection):
    name = "munmap-sealed-unmaps-head"
    description = ("munmap() of a range whose later VMAs are sealed unmaps the unsealed VMAs "
                   "before the first sealed one, then fails with EPERM: the refusal is not "
                   "atomic, and memory the caller still relies on is gone.")
    source = ("hypothetical: vms_gather_munmap_vmas() (mm/vma.c) meeting the sealed VMA after "
              "the ones before it were already torn down, as a broken abort path would")

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        if call.name != "munmap" or result != -EPERM or call.args["addr"] % PAGE:
            return None
        addr, length = call.args["addr"], call.args["len"]
        head = _run(call, addr, length, sealed=False)
        return Then((Extra("munmap", (addr, head)),)) if head else None


class GuardDroppedOnFork(Injection):
    name = "guard-dropped-on-fork"
    description = ("fork() does not copy guard markers: the child's guard regions are gone, "
                   "and a touch there maps a page instead of raising SIGSEGV.")
    source = ("the class of bug VM_MAYBE_GUARD was added for (Lorenzo Stoakes, 2025): "
              "vma_needs_copy() skipped the page tables, markers included, of a VMA it "
              "thought empty")

    def on_fork(self, parent: Process, child: Process) -> Then | None:
        extras = tuple(Extra("madvise", (v.start, v.size, MADV_GUARD_REMOVE))
                       for v in child.vmas if "gu" in v.flags)
        return Then(extras) if extras else None


class GuardDroppedByHolePunch(Injection):
    name = "guard-dropped-by-hole-punch"
    description = ("madvise(MADV_REMOVE) on a shared (shmem or memfd) mapping punches the "
                   "hole and also takes away the guard markers of the VMAs it punched: the "
                   "guard regions are gone, and a touch there maps a page instead of raising "
                   "SIGSEGV.")
    source = ("hypothetical: shmem_fallocate()'s hole punch unmapping the range with "
              "ZAP_FLAG_DROP_MARKER, the only zap that removes guard markers (mm/memory.c "
              "zap_nonpresent_ptes), as a change dropping stale uffd-wp markers there might")

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        # 0, or ENOMEM for a hole (madvise_walk_vmas: every mapped part was punched, since
        # any other error ends the walk): GUARD_REMOVE walks the same parts.
        if call.name == "madvise" and result in (0, -ENOMEM) \
                and call.args["advice"] & 0xFFFFFFFF == MADV_REMOVE:
            return Then((Extra("madvise", (call.args["addr"], call.args["len"],
                                           MADV_GUARD_REMOVE)),))
        return None


class PageoutReclaimsLocked(Injection):
    name = "pageout-reclaims-locked"
    description = ("madvise(MADV_PAGEOUT) on a locked VMA succeeds and reclaims its pages: "
                   "mlock's promise (the pages stay resident) is broken, and the next touch "
                   "faults them in again (here: dropped, as reclaim with swap would unmap them).")
    source = ("hypothetical: can_madv_lru_vma() (mm/madvise.c) losing its VM_LOCKED test, "
              "so madvise_pageout() reclaims mlocked memory")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "madvise" and call.args["advice"] & 0xFFFFFFFF == MADV_PAGEOUT \
                and call.process.lock_at(call.args["addr"]) in ("locked", "onfault"):
            return Rewrite(advice=MADV_DONTNEED_LOCKED)
        return None


class DroppableLockedAccepted(Injection):
    name = "droppable-locked-accepted"
    description = ("mmap(MAP_DROPPABLE|MAP_LOCKED) succeeds, where it must fail with EINVAL: "
                   "the caller asked for memory that stays resident and got memory the "
                   "kernel may drop (the mapping is droppable, not locked).")
    source = ("hypothetical: do_mmap()'s MAP_DROPPABLE case (mm/mmap.c, 6.11) without its "
              "MAP_LOCKED check, mlock_fixup() then silently refusing VM_LOCKED")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mmap":
            flags = call.args["flags"]
            if flags & MAP_TYPE == MAP_DROPPABLE and flags & MAP_ANONYMOUS \
                    and flags & MAP_LOCKED:
                return Rewrite(flags=flags & ~MAP_LOCKED)
        return None


class HugepageAdviceIgnored(Injection):
    name = "hugepage-advice-ignored"
    description = ("madvise(MADV_HUGEPAGE) succeeds, but later write faults in the range map "
                   "single pages: the mTHP sizes sysfs enables for advised VMAs (\"madvise\", "
                   "or \"inherit\" under a top-level \"madvise\") never apply. Emulated as "
                   "MADV_NOHUGEPAGE, which makes the same checks and splits.")
    source = ("hypothetical: __thp_vma_allowable_orders() (mm/huge_memory.c, 6.8+ mTHP) "
              "losing huge_anon_orders_madvise for VM_HUGEPAGE VMAs; needs an mTHP size "
              "enabled in sysfs (docs/SEMANTICS.md §19)")

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "madvise" and call.args["advice"] & 0xFFFFFFFF == MADV_HUGEPAGE:
            return Rewrite(advice=MADV_NOHUGEPAGE)
        return None


# PMD-mapped huge pages (docs/SEMANTICS.md §22): only the huge arena (MMFUZZ_ARENA=huge)
# holds a 2 MiB region whole, so only a campaign there can meet these.
PMD_SIZE = 512 * PAGE
PM_PFN = (1 << 55) - 1


def _huge_page_at(call: Syscall, addr: int) -> int | None:
    """The 2 MiB-aligned region around `addr` if one huge page maps it whole (its 512
    pages present, on 512 frames in order from an aligned one), else None."""
    region = addr - addr % PMD_SIZE
    words = call.pagemap(region, PMD_SIZE // PAGE)
    first = words[0] & PM_PFN
    if first == 0 or first % (PMD_SIZE // PAGE):
        return None
    if all(w & PM_PRESENT and w & PM_PFN == first + i for i, w in enumerate(words)):
        return region
    return None


def _inside_part(call: Syscall) -> int | None:
    """For a call on (addr, len) that covers part of a 2 MiB region a huge page maps,
    and nothing outside it: that region."""
    addr, length = call.args["addr"], call.args["len"]
    if addr % PAGE or not 0 < length < PMD_SIZE:
        return None
    region = addr - addr % PMD_SIZE
    if addr + length > region + PMD_SIZE:
        return None
    return _huge_page_at(call, addr)


class HugeSplitDropsRest(Injection):
    name = "huge-split-drops-rest"
    description = ("munmap of part of a huge page (a PMD) unmaps that part, and the rest of "
                   "the huge page is gone from the page tables too: the split lost the PTEs it "
                   "should have installed for the pages left mapped. Emulated with "
                   "MADV_DONTNEED_LOCKED of the whole 2 MiB region after the munmap.")
    source = ("hypothetical: __split_huge_pmd_locked() (mm/huge_memory.c) not refilling the "
              "page table; needs the huge arena (MMFUZZ_ARENA=huge) and the PMD size enabled "
              "(docs/SEMANTICS.md §22)")
    huge = True

    def __init__(self) -> None:
        self._region: dict[int, int] = {}

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "munmap":
            region = _inside_part(call)
            if region is not None:
                self._region[call.pid] = region
        return None

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        region = self._region.pop(call.pid, None)
        if call.name != "munmap" or region is None or result != 0:
            return None
        return Then((Extra("madvise", (region, PMD_SIZE, MADV_DONTNEED_LOCKED)),), result=0)


class HugeMprotectWholePmd(Injection):
    name = "huge-mprotect-whole-pmd"
    description = ("mprotect of part of a huge page (a PMD) changes the protection of the "
                   "whole 2 MiB it maps: the PMD was changed whole instead of split first. "
                   "Emulated by widening the range to the region.")
    source = ("hypothetical, after the change_huge_pmd() range checks of mm/huge_memory.c "
              "(change_pmd_range splits a PMD the range covers only in part); needs the huge "
              "arena (MMFUZZ_ARENA=huge) and the PMD size enabled (docs/SEMANTICS.md §22)")
    huge = True

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "mprotect":
            region = _inside_part(call)
            if region is not None:
                return Rewrite(addr=region, len=PMD_SIZE)
        return None


class HugeMunlockWholePmd(Injection):
    name = "huge-munlock-whole-pmd"
    description = ("munlock of part of a locked huge page (a PMD) unlocks the whole 2 MiB it "
                   "maps: the PMD was munlocked whole instead of split first, and VmLck drops "
                   "with it. Emulated by widening the range to the region.")
    source = ("hypothetical, after the issue's example of a huge page that munlock splits "
              "wrongly (mlock_fixup and mlock_pte_range over a PMD-mapped folio, mm/mlock.c); "
              "needs the huge arena (MMFUZZ_ARENA=huge) and the PMD size enabled "
              "(docs/SEMANTICS.md §22)")
    huge = True

    def on_entry(self, call: Syscall) -> EntryAction:
        if call.name == "munlock" and call.process.lock_at(call.args["addr"]) == "locked":
            region = _inside_part(call)
            if region is not None:
                return Rewrite(addr=region, len=PMD_SIZE)
        return None


class HugeMlockSplitsPmd(Injection):
    name = "huge-mlock-splits-pmd"
    description = ("mlock (or mlockall) of a range that holds a whole huge page (a PMD) splits "
                   "the PMD into PTEs: every page stays mapped and locked, but the huge page "
                   "is gone from smaps' AnonHugePages. Emulated after the call by "
                   "MADV_NOHUGEPAGE and "
                   "MADV_HUGEPAGE of the region's first page (a VMA split inside the PMD, "
                   "which splits it, then the merge back).")
    source = ("hypothetical, after mlock_pte_range() (mm/mlock.c), which mlocks a PMD-mapped "
              "folio whole and splits nothing; only smaps' AnonHugePages shows the split; "
              "needs the huge arena (MMFUZZ_ARENA=huge) and the PMD size enabled "
              "(docs/SEMANTICS.md §22)")
    huge = True

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        if result != 0:
            return None
        if call.name in ("mlock", "mlock2"):
            addr, length = call.args["addr"], call.args["len"]
        elif call.name == "mlockall" and call.args["flags"] & MCL_CURRENT:
            addr, length = ARENA.base, ARENA.size  # every VMA: the arena's regions
        else:
            return None
        # the aligned regions the range holds whole, in the arena (a length may be huge)
        region = -(-max(addr, ARENA.base) // PMD_SIZE) * PMD_SIZE
        while region + PMD_SIZE <= min(addr + length, ARENA.end):
            if _huge_page_at(call, region) is not None:
                return Then((Extra("madvise", (region, PAGE, MADV_NOHUGEPAGE)),
                             Extra("madvise", (region, PAGE, MADV_HUGEPAGE))), result=0)
            region += PMD_SIZE
        return None


SHALLOW: tuple[type[Injection], ...] = (
    PopulateNeedsLock, MlockallOnfaultAccepted, Mlock2OnfaultIgnored, MunlockSkipped,
    MremapGrowUnlocked, FixedNoreplaceAsHint, MmapLen0Accepted, MprotectLockedNoCow,
    MsealHoleSealsHead, MunmapSealedUnmapsHead, GuardDroppedOnFork, PageoutReclaimsLocked,
    DroppableLockedAccepted, GuardDroppedByHolePunch, HugepageAdviceIgnored,
    HugeSplitDropsRest, HugeMprotectWholePmd, HugeMunlockWholePmd, HugeMlockSplitsPmd,
)
CATALOGUE: dict[str, type[Injection]] = {cls.name: cls for cls in SHALLOW + DEEP}
"""Every named injection; the deep ones (`deep = True`, fuzzer/inject/deep.py) need several
ordered calls to agree."""
