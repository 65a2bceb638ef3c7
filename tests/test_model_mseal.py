"""mseal and what a seal refuses, against hand-derived expectations (docs/SEMANTICS.md §14).

Same table style as `test_model_madvise.py`. Every expectation comes from the
kernel function named in the comment above the row (mm/mseal.c, mm/vma.c
vms_gather_munmap_vmas, mm/mprotect.c mprotect_fixup, mm/mremap.c
check_prep_vma, mm/madvise.c can_madvise_modify), not from running the model.
`test_model_mseal_kernel.py` runs the same table on the real kernel.
"""

from __future__ import annotations

import pytest

from tests.tables import Case, case, check_model, check_table, model_params

RW, AP = "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS"
FIXED = f"{AP}|MAP_FIXED"
POP = f"{AP}|MAP_FIXED|MAP_POPULATE"
# Programs run as two rows each: on kernels with and without mremap_checks_first.
OVERLAP = """
    mmap(@0, 2p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
    mseal(@1, 1p, 0)
    mremap(@1, 4p, 4p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @0)
    mremap(@1, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @1)
    """
FIXED_ONTO_SEALED = """
    mmap(@0, 1p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
    mseal(@0, 1p, 0)
    mmap(@3, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
    mremap(@3, 2p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @0)
    mremap(@3, 1p, 3p, MREMAP_MAYMOVE|MREMAP_FIXED, @0)
    mremap(@3, 1p, 5p, MREMAP_MAYMOVE|MREMAP_FIXED, @0)
    """

ROWS = [
    # ------------------------------------------------------------- do_mseal's arguments
    # flags must be 0; the start page aligned; len rounded up, and a len that rounds
    # to zero from "small negative" is EINVAL; len 0 is 0 before any VMA is looked at
    case("mseal-arguments", f"""
        mmap(@0, 2p, {RW}, {POP}, -1, 0)
        mseal(@0, 1p, 1)
        mseal(@0+1, 1p, 0)
        mseal(@0, 0xffffffffffffffff, 0)
        mseal(@0, 0, 0)
        mseal(@9, 0, 0)
        mseal(@1, 1, 0)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL", "0", "0", "0"],
        "@0 rw-p A; @1 rw-p sl A"),
    # mseal_apply: the range's VMAs are split at its ends and sealed
    case("mseal-splits", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        mseal(@1, 2p, 0)
        """, ["@0", "0"], "@0 rw-p A; @1-2 rw-p sl AA; @3 rw-p A"),
    # range_contains_unmapped: a hole anywhere, or an unmapped start, is ENOMEM and
    # nothing is sealed
    case("mseal-hole", f"""
        mmap(@0, 2p, {RW}, {POP}, -1, 0)
        mmap(@3, 1p, {RW}, {POP}, -1, 0)
        mseal(@0, 4p, 0)
        mseal(@2, 2p, 0)
        mseal(@1, 2p, 0)
        """, ["@0", "@3", "-ENOMEM", "-ENOMEM", "-ENOMEM"], "@0-1 rw-p AA; @3 rw-p A"),
    # ------------------------------------------------------------- mremap's order of checks
    # check_mremap_params refuses a new range that overlaps the old one (EINVAL) before
    # check_prep_vma looks at the seal (6.17+); before, do_mremap looked the VMA up and
    # refused a sealed one (can_modify_vma: EPERM) before mremap_to() checked the new
    # range. Found on 6.12.118 in a UML campaign, as a false alarm of the model.
    case("mseal-mremap-overlap", OVERLAP, ["@0", "0", "-EINVAL", "-EINVAL"],
         "@0 ---s .; @1 ---s sl ."),
    case("mseal-mremap-overlap-before-6.17", OVERLAP, ["@0", "0", "-EPERM", "-EPERM"],
         "@0 ---s .; @1 ---s sl .", features={"mremap_checks_first": False}),
    # ... and mremap_to() unmapped a FIXED target with do_munmap, which refuses a sealed
    # one, as 6.17+'s mremap_to does (a false alarm on 6.12: the model had cleared it);
    # the overlap of the old and new ranges is EINVAL before either, in both.
    case("mseal-mremap-fixed-onto-sealed-before-6.17", FIXED_ONTO_SEALED,
         ["@0", "0", "@3", "-EPERM", "-EPERM", "-EINVAL"], "@0 ---s sl .; @3-4 ---p ..",
         features={"mremap_checks_first": False}),
    case("mseal-mremap-fixed-onto-sealed", FIXED_ONTO_SEALED,
         ["@0", "0", "@3", "-EPERM", "-EPERM", "-EINVAL"], "@0 ---s sl .; @3-4 ---p .."),
    # ------------------------------------------------------------- munmap, mmap MAP_FIXED
    # vms_gather_munmap_vmas: any sealed VMA in the range refuses the whole munmap
    case("mseal-munmap", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        mseal(@2, 2p, 0)
        munmap(@2, 1p)
        munmap(@0, 4p)
        munmap(@0, 2p)
        """, ["@0", "0", "-EPERM", "-EPERM", "0"], "@2-3 rw-p sl AA"),
    # ... but a range that starts inside an unsealed VMA has split it before the sealed
    # VMA is met, and the split stays: mremap then finds @0 alone in its VMA (EFAULT
    # where one VMA @0-1 would have moved)
    case("mseal-munmap-leaves-split", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        mseal(@2, 2p, 0)
        munmap(@1, 2p)
        mremap(@0, 2p, 3p, MREMAP_MAYMOVE, @0)
        """, ["@0", "0", "-EPERM", "-EFAULT"], "@0-1 rw-p AA; @2-3 rw-p sl AA"),
    # __mmap_region gathers the VMAs it replaces the same way: EPERM, and the split too;
    # MAP_FIXED_NOREPLACE is EEXIST before that
    case("mseal-mmap-fixed", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        mseal(@2, 2p, 0)
        mmap(@1, 2p, PROT_READ, {FIXED}, -1, 0)
        mmap(@2, 1p, PROT_READ, {AP}|MAP_FIXED_NOREPLACE, -1, 0)
        mremap(@0, 2p, 3p, MREMAP_MAYMOVE, @0)
        """, ["@0", "0", "-EPERM", "-EEXIST", "-EFAULT"], "@0-1 rw-p AA; @2-3 rw-p sl AA"),
    # ------------------------------------------------------------- mprotect
    # mprotect_fixup refuses a sealed VMA, even with its own protection; the VMAs
    # before it in the range keep their new protection
    case("mseal-mprotect", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        mseal(@2, 2p, 0)
        mprotect(@0, 4p, PROT_READ)
        mprotect(@2, 1p, {RW})
        mprotect(@3, 1p, PROT_READ)
        """, ["@0", "0", "-EPERM", "-EPERM", "-EPERM"], "@0-1 r--p AA; @2-3 rw-p sl AA"),
    # ------------------------------------------------------------- mlock is allowed
    case("mseal-mlock", f"""
        mmap(@0, 2p, {RW}, {FIXED}, -1, 0)
        mseal(@0, 2p, 0)
        mlock(@1, 1p)
        mlock(@0, 1p)
        munlock(@0, 1p)
        """, ["@0", "0", "0", "0", "0"], "@0 rw-p sl A; @1 rw-p lo sl A", locked=1),
    # ------------------------------------------------------------- mremap
    # check_prep_vma: a sealed source is EPERM for every resize, even none; a sealed
    # target of MREMAP_FIXED is not unmapped; a shrink whose tail lies in a sealed VMA
    # is refused by its do_vmi_munmap
    case("mseal-mremap", f"""
        mmap(@0, 2p, {RW}, {POP}, -1, 0)
        mseal(@0, 2p, 0)
        mremap(@0, 2p, 4p, 0, @0)
        mremap(@0, 2p, 1p, 0, @0)
        mremap(@0, 2p, 2p, 0, @0)
        mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @4)
        mmap(@4, 1p, {RW}, {POP}, -1, 0)
        mremap(@4, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @1)
        mremap(@4, 1p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED, @0)
        mmap(@6, 2p, {RW}, {POP}, -1, 0)
        mseal(@7, 1p, 0)
        mremap(@6, 2p, 1p, 0, @0)
        """, ["@0", "0", "-EPERM", "-EPERM", "-EPERM", "-EPERM", "@4", "-EPERM", "-EPERM",
              "@6", "0", "-EPERM"],
        "@0-1 rw-p sl AA; @4 rw-p A; @6 rw-p A; @7 rw-p sl A"),
    # ------------------------------------------------------------- madvise
    # can_madvise_modify: discarding advice (DONTNEED, FREE, REMOVE, DONTFORK, ...) is
    # EPERM on a sealed private anonymous VMA without PROT_WRITE, before the advice's
    # own checks (REMOVE would be EINVAL); other advice is allowed; a writable or a
    # shared sealed VMA may be discarded
    case("mseal-madvise", f"""
        mmap(@0, 2p, PROT_READ, {POP}, -1, 0)
        mmap(@4, 1p, {RW}, {POP}, -1, 0)
        mmap(@6, 1p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
        mseal(@0, 2p, 0)
        mseal(@4, 1p, 0)
        mseal(@6, 1p, 0)
        madvise(@0, 1p, MADV_DONTNEED)
        madvise(@0, 1p, MADV_FREE)
        madvise(@0, 1p, MADV_REMOVE)
        madvise(@0, 1p, MADV_DONTFORK)
        madvise(@0, 1p, MADV_WIPEONFORK)
        madvise(@0, 1p, MADV_DONTNEED_LOCKED)
        madvise(@0, 1p, MADV_WILLNEED)
        madvise(@0, 1p, MADV_COLD)
        madvise(@4, 1p, MADV_DONTNEED)
        madvise(@6, 1p, MADV_DONTNEED)
        """, ["@0", "@4", "@6", "0", "0", "0", "-EPERM", "-EPERM", "-EPERM", "-EPERM",
              "-EPERM", "-EPERM", "0", "0", "0", "0"],
        "@0-1 r--p sl ZZ; @4 rw-p sl .; @6 r--s sl ."),
    # madvise_walk_vmas stops at the first refusing VMA: the ones before are discarded
    case("mseal-madvise-partial", f"""
        mmap(@0, 2p, PROT_READ, {POP}, -1, 0)
        mseal(@1, 1p, 0)
        madvise(@0, 2p, MADV_DONTNEED)
        """, ["@0", "0", "-EPERM"], "@0 r--p .; @1 r--p sl Z"),
    # ------------------------------------------------------------- fork
    # dup_mmap copies vm_flags: the child's copy is sealed too
    case("mseal-fork", f"""
        mmap(@0, 2p, {RW}, {POP}, -1, 0)
        mseal(@0, 1p, 0)
        fork()
        p1: munmap(@0, 1p)
        p1: munmap(@1, 1p)
        """, ["@0", "0", "pid", "-EPERM", "0"], "@0 rw-p sl a"),
    # ------------------------------------------------------------- before 6.10
    case("mseal-enosys", f"""
        mmap(@0, 1p, {RW}, {POP}, -1, 0)
        mseal(@0, 1p, 0)
        munmap(@0, 1p)
        """, ["@0", "-ENOSYS", "0"], "(arena empty)", features={"mseal": False}),
]


def test_table() -> None:
    check_table(ROWS, at_least=13)


@pytest.mark.parametrize("c", model_params(ROWS))
def test_model(c: Case) -> None:
    check_model(c)
