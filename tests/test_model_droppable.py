"""MAP_DROPPABLE against hand-derived expectations (docs/SEMANTICS.md §17, mm/mmap.c, mm/mlock.c).

A droppable mapping is private anonymous memory the kernel may drop under
memory pressure (there is none here, so its pages behave as present). do_mmap
gives it VM_DROPPABLE, VM_NORESERVE, VM_WIPEONFORK and VM_DONTDUMP (smaps `dp nr
wf dd`; the oracle compares `wf`); mlock_fixup never locks it, and MADV_PAGEOUT
drops its pages, written or not (try_to_unmap_one). Every expectation comes from
the kernel function named above the row; `test_model_droppable_kernel.py` runs
the same table on the real kernel.
"""

from __future__ import annotations

import pytest

from tests.tables import Case, case, check_model, check_table, model_params

RW = "PROT_READ|PROT_WRITE"
DP = "MAP_DROPPABLE|MAP_ANONYMOUS|MAP_FIXED"
AP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"
NEW = {"map_droppable": True}

ROWS = [
    # do_mmap: private anonymous memory with VM_WIPEONFORK among its flags; faults as any
    case("droppable-map", f"""
        mmap(@0, 2p, {RW}, {DP}, -1, 0)
        touch(@0, write)
        touch(@1, read)
        """, ["@0", "-", "-"], "@0-1 rw-p wf AZ", features=NEW),
    # do_mmap: MAP_LOCKED and MAP_GROWSDOWN make no sense with it (EINVAL); a file
    # mapping knows no such type (EINVAL)
    case("droppable-einval", f"""
        mmap(@0, 1p, {RW}, {DP}|MAP_LOCKED, -1, 0)
        mmap(@0, 1p, {RW}, {DP}|MAP_GROWSDOWN, -1, 0)
        memfd_create()
        ftruncate(0, 1p)
        mmap(@0, 1p, {RW}, MAP_DROPPABLE|MAP_FIXED, 0, 0)
        """, ["-EINVAL", "-EINVAL", "0", "0", "-EINVAL"], "(arena empty)", features=NEW),
    # mlock_fixup leaves a VM_DROPPABLE VMA unlocked (and uncounted) but returns 0;
    # __mm_populate still faults it in, lock-on-fault included (the VMA has no
    # VM_LOCKONFAULT to stop it)
    case("droppable-mlock", f"""
        mmap(@0, 2p, {RW}, {DP}, -1, 0)
        mmap(@2, 2p, {RW}, {DP}, -1, 0)
        mlock(@0, 2p)
        mlock2(@2, 2p, MLOCK_ONFAULT)
        munlock(@0, 4p)
        """, ["@0", "@2", "0", "0", "0"], "@0-3 rw-p wf AAAA", locked=0, features=NEW),
    # mlockall locks every VMA but the droppable ones; MCL_FUTURE's VM_LOCKED makes a new
    # droppable mapping populated (do_mmap) but __mmap_complete clears the lock
    case("droppable-mlockall", f"""
        mmap(@0, 1p, {RW}, {DP}, -1, 0)
        mmap(@2, 1p, {RW}, {AP}, -1, 0)
        mlockall(MCL_CURRENT|MCL_FUTURE)
        mmap(@4, 2p, {RW}, {DP}, -1, 0)
        mmap(@6, 1p, {RW}, {AP}, -1, 0)
        munlockall()
        """, ["@0", "@2", "0", "@4", "@6", "0"],
        "@0 rw-p wf A; @2 rw-p A; @4-5 rw-p wf AA; @6 rw-p A", features=NEW),
    # mlockall(MCL_CURRENT|MCL_ONFAULT) still runs mm_populate(0, TASK_SIZE): it skips the
    # VM_LOCKONFAULT VMAs, and a droppable VMA, which mlock_fixup leaves unlocked, is not one
    # of them, so it is faulted in (write faults where writable, the zero page where read-only)
    case("droppable-mlockall-onfault", f"""
        mmap(@0, 2p, {RW}, {DP}, -1, 0)
        mmap(@3, 1p, PROT_READ, {DP}, -1, 0)
        mmap(@5, 1p, {RW}, {AP}, -1, 0)
        mlockall(MCL_CURRENT|MCL_ONFAULT)
        munlockall()
        """, ["@0", "@3", "@5", "0", "0"], "@0-1 rw-p wf AA; @3 r--p wf Z; @5 rw-p .",
        features=NEW),
    # the same rule for a new mapping under MCL_FUTURE|MCL_ONFAULT: do_mmap asks for
    # population (VM_LOCKED), __mmap_complete clears the lock bits of a droppable VMA, and
    # populate_vma_page_range finds no VM_LOCKONFAULT there
    case("droppable-mlockall-future-onfault", f"""
        mlockall(MCL_FUTURE|MCL_ONFAULT)
        mmap(@0, 2p, {RW}, {DP}, -1, 0)
        mmap(@3, 1p, PROT_READ, {DP}, -1, 0)
        mmap(@5, 1p, {RW}, {AP}, -1, 0)
        munlockall()
        """, ["0", "@0", "@3", "@5", "0"], "@0-1 rw-p wf AA; @3 r--p wf Z; @5 rw-p .",
        features=NEW),
    # VM_WIPEONFORK: the child's copy of the VMA starts empty
    case("droppable-fork", f"""
        mmap(@0, 2p, {RW}, {DP}|MAP_POPULATE, -1, 0)
        fork()
        p1: touch(@0, read)
        """, ["@0", "pid", "-"], "@0-1 rw-p wf Z.", features=NEW),
    # madvise_vma_behavior: KEEPONFORK and DODUMP refuse VM_DROPPABLE (EINVAL); the rest
    # of the advice treats it as private anonymous memory
    case("droppable-madvise", f"""
        mmap(@0, 2p, {RW}, {DP}|MAP_POPULATE, -1, 0)
        madvise(@0, 2p, MADV_KEEPONFORK)
        madvise(@0, 2p, MADV_DODUMP)
        madvise(@0, 1p, MADV_WIPEONFORK)
        madvise(@0, 2p, MADV_DONTDUMP)
        madvise(@0, 2p, MADV_FREE)
        madvise(@1, 1p, MADV_DONTNEED)
        """, ["@0", "-EINVAL", "-EINVAL", "0", "0", "0", "0"], "@0-1 rw-p wf A.",
        features=NEW),
    # a droppable folio is never swap-backed: reclaim (MADV_PAGEOUT) discards it even when
    # written (try_to_unmap_one), and a read maps the zero page again
    case("droppable-pageout", f"""
        mmap(@0, 3p, {RW}, {DP}, -1, 0)
        touch(@0, write)
        touch(@1, write)
        touch(@2, read)
        madvise(@0, 3p, MADV_PAGEOUT)
        touch(@0, read)
        """, ["@0", "-", "-", "-", "0", "-"], "@0-2 rw-p wf Z.Z",
        features={**NEW, "no_swap": True}),
    # MADV_FREE of droppable pages leaves nothing lazily freed (folio_mark_lazyfree wants a
    # swap-backed folio), so MADV_PAGEOUT after it is predicted
    case("droppable-free-then-pageout", f"""
        mmap(@0, 1p, {RW}, {DP}|MAP_POPULATE, -1, 0)
        madvise(@0, 1p, MADV_FREE)
        madvise(@0, 1p, MADV_PAGEOUT)
        """, ["@0", "0", "0"], "@0 rw-p wf .", features={**NEW, "no_swap": True}),
    # before 6.11 the mapping type 0x08 is unknown: EINVAL
    case("droppable-einval-before-6.11", f"""
        mmap(@0, 1p, {RW}, {DP}, -1, 0)
        """, ["-EINVAL"], "(arena empty)", features={"map_droppable": False}),
]


def test_table() -> None:
    check_table(ROWS, at_least=9)


@pytest.mark.parametrize("c", model_params(ROWS))
def test_model(c: Case) -> None:
    check_model(c)
