"""Guard regions against hand-derived expectations (docs/SEMANTICS.md §15, mm/madvise.c).

MADV_GUARD_INSTALL and MADV_GUARD_REMOVE on private anonymous mappings, then on
shared anonymous and memfd ones (6.15+, `Features.shmem_guards`). `G` is a guard
marker: pagemap shows it (PM_GUARD_REGION), it is no page (Rss), and a touch of it
is SIGSEGV/MAPERR. Every expectation comes from the kernel function
named above the row, not from running the model. `test_model_guard_kernel.py`
runs the same table on the real kernel.
"""

from __future__ import annotations

import pytest

from tests.tables import Case, case, check_model, check_table, model_params

RW, AP = "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS"
FIXED = f"{AP}|MAP_FIXED"
POP = f"{AP}|MAP_FIXED|MAP_POPULATE"
SEGV = "SIGSEGV/MAPERR"
AS = "MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED"
FS, FP = "MAP_SHARED|MAP_FIXED", "MAP_PRIVATE|MAP_FIXED"
NEW = "memfd_create()\n"

ROWS = [
    # madvise_guard_install zaps the range and installs markers; a touch of one is
    # SIGSEGV (handle_pte_marker: VM_FAULT_SIGSEGV), read or write, MAPERR
    case("guard-install", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        madvise(@1, 2p, MADV_GUARD_INSTALL)
        touch(@1, read)
        touch(@2, write)
        touch(@0, read)
        """, ["@0", "0", SEGV, SEGV, "-"], "@0-3 rw-p AGGA"),
    # zap_page_range_single_batched keeps markers (no ZAP_FLAG_DROP_MARKER): DONTNEED
    # and FREE leave the guards where they are
    case("guard-dontneed-keeps", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        madvise(@1, 2p, MADV_GUARD_INSTALL)
        madvise(@0, 4p, MADV_DONTNEED)
        madvise(@0, 4p, MADV_FREE)
        touch(@1, read)
        """, ["@0", "0", "0", "0", SEGV], "@0-3 rw-p .GG."),
    # madvise_guard_remove: the marker goes and nothing is mapped; a touch faults anew
    case("guard-remove", f"""
        mmap(@0, 2p, {RW}, {FIXED}, -1, 0)
        madvise(@0, 2p, MADV_GUARD_INSTALL)
        madvise(@1, 1p, MADV_GUARD_REMOVE)
        madvise(@1, 1p, MADV_GUARD_REMOVE)
        touch(@1, read)
        """, ["@0", "0", "0", "0", "-"], "@0-1 rw-p GZ"),
    # madvise_walk_vmas: a hole is ENOMEM at the end, after every mapped part had it
    case("guard-hole", f"""
        mmap(@0, 1p, {RW}, {FIXED}, -1, 0)
        mmap(@2, 2p, {RW}, {FIXED}, -1, 0)
        madvise(@0, 4p, MADV_GUARD_INSTALL)
        mmap(@5, 1p, {RW}, {FIXED}, -1, 0)
        madvise(@5, 1p, MADV_GUARD_INSTALL)
        madvise(@2, 4p, MADV_GUARD_REMOVE)
        """, ["@0", "@2", "-ENOMEM", "@5", "0", "-ENOMEM"], "@0 rw-p G; @2-3 rw-p ..; @5 rw-p ."),
    # GUP faults on a marker (EFAULT): POPULATE_* fail there, after populating the pages
    # before it
    case("guard-populate", f"""
        mmap(@0, 4p, {RW}, {FIXED}, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        madvise(@0, 4p, MADV_POPULATE_READ)
        madvise(@2, 2p, MADV_POPULATE_WRITE)
        madvise(@0, 4p, MADV_POPULATE_WRITE)
        """, ["@0", "0", "-EFAULT", "0", "-EFAULT"], "@0-3 rw-p AGAA"),
    # is_valid_guard_vma: install refuses VM_LOCKED VMAs (it would zap locked pages);
    # remove allows them
    case("guard-locked", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_FIXED|MAP_LOCKED, -1, 0)
        madvise(@0, 1p, MADV_GUARD_INSTALL)
        madvise(@0, 1p, MADV_GUARD_REMOVE)
        """, ["@0", "-EINVAL", "0"], "@0-1 rw-p lo AA", locked=2),
    # mlock after install: the VMA is locked, but __mm_populate stops at the marker
    # (EFAULT, which mlock reports as ENOMEM); pages after it in the VMA stay absent.
    # Removing the marker from the locked VMA is allowed, and mlock then populates it.
    case("guard-then-mlock", f"""
        mmap(@0, 3p, {RW}, {FIXED}, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        mlock(@0, 3p)
        mlock2(@0, 3p, MLOCK_ONFAULT)
        madvise(@1, 1p, MADV_GUARD_REMOVE)
        mlock(@1, 1p)
        """, ["@0", "0", "-ENOMEM", "0", "0", "0"],
        "@0 rw-p lo lf A; @1 rw-p lo A; @2 rw-p lo lf .", locked=3),
    # mlockall(MCL_CURRENT) populates with ignore_errors: it goes on at the next VMA,
    # so the pages after the marker in its VMA stay absent
    case("guard-mlockall", f"""
        mmap(@0, 3p, {RW}, {FIXED}, -1, 0)
        mmap(@3, 1p, PROT_READ, {FIXED}, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        mlockall(MCL_CURRENT)
        """, ["@0", "@3", "0", "0"], "@0-2 rw-p lo AG.; @3 r--p lo Z"),
    # the VMA's protection is checked before the fault: PROT_NONE is ACCERR; mprotect
    # keeps the markers
    case("guard-mprotect", f"""
        mmap(@0, 2p, PROT_NONE, {FIXED}, -1, 0)
        madvise(@0, 2p, MADV_GUARD_INSTALL)
        touch(@0, read)
        mprotect(@0, 2p, PROT_READ)
        touch(@1, read)
        """, ["@0", "0", "SIGSEGV/ACCERR", "0", SEGV], "@0-1 r--p GG"),
    # munmap takes the markers with the page tables: a new mapping there has none
    case("guard-munmap", f"""
        mmap(@0, 2p, {RW}, {FIXED}, -1, 0)
        madvise(@0, 2p, MADV_GUARD_INSTALL)
        munmap(@1, 1p)
        mmap(@1, 1p, {RW}, {FIXED}, -1, 0)
        mmap(@0, 1p, {RW}, {FIXED}, -1, 0)
        touch(@1, write)
        """, ["@0", "0", "0", "@1", "@0", "-"], "@0-1 rw-p .A"),
    # move_page_tables moves the markers with the range; a shrink keeps those left, a
    # growth adds none
    case("guard-mremap", f"""
        mmap(@0, 4p, {RW}, {FIXED}, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        touch(@2, write)
        mremap(@0, 4p, 4p, MREMAP_MAYMOVE|MREMAP_FIXED, @8)
        touch(@9, read)
        mremap(@8, 4p, 2p, 0, @0)
        mremap(@8, 2p, 4p, 0, @0)
        """, ["@0", "0", "-", "@8", SEGV, "@8", "@8"], "@8-11 rw-p .G.."),
    # install gives the VMA an anon_vma, so vma_needs_copy copies the page tables, markers
    # included, to a fork child; a VM_WIPEONFORK VMA starts empty there
    case("guard-fork", f"""
        mmap(@0, 2p, {RW}, {FIXED}, -1, 0)
        mmap(@2, 1p, {RW}, {POP}, -1, 0)
        madvise(@0, 1p, MADV_GUARD_INSTALL)
        madvise(@2, 1p, MADV_WIPEONFORK)
        madvise(@2, 1p, MADV_GUARD_INSTALL)
        fork()
        p1: touch(@0, read)
        p1: touch(@2, read)
        """, ["@0", "@2", "0", "0", "0", "pid", SEGV, "-"], "@0-1 rw-p G.; @2 rw-p wf Z"),
    # can_madvise_modify: GUARD_INSTALL discards, so a sealed read-only private anonymous
    # VMA refuses it; GUARD_REMOVE does not discard
    case("guard-sealed", f"""
        mmap(@0, 1p, PROT_READ, {FIXED}, -1, 0)
        mmap(@2, 1p, {RW}, {FIXED}, -1, 0)
        mseal(@0, 1p, 0)
        mseal(@2, 1p, 0)
        madvise(@0, 1p, MADV_GUARD_INSTALL)
        madvise(@0, 1p, MADV_GUARD_REMOVE)
        madvise(@2, 1p, MADV_GUARD_INSTALL)
        """, ["@0", "@2", "0", "0", "-EPERM", "0", "0"], "@0 r--p sl .; @2 rw-p sl G"),
    # before 6.13 the advice is unknown: EINVAL
    case("guard-einval-before-6.13", f"""
        mmap(@0, 1p, {RW}, {FIXED}, -1, 0)
        madvise(@0, 1p, MADV_GUARD_INSTALL)
        madvise(@0, 1p, MADV_GUARD_REMOVE)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0 rw-p .", features={"guard_regions": False}),
    # ------------------------------------------ shared and memfd mappings (6.15+)
    # is_valid_guard_vma takes any VMA but VM_SPECIAL, hugetlb and VM_LOCKED: shared
    # anonymous memory too. The zap unmaps the shmem pages (they stay cached); a touch
    # of a marker is SIGSEGV before shmem_fault is asked
    case("shmem-guard-install", f"""
        mmap(@0, 4p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        madvise(@1, 2p, MADV_GUARD_INSTALL)
        touch(@1, read)
        touch(@2, write)
        touch(@0, read)
        """, ["@0", "0", SEGV, SEGV, "-"], "@0-3 rw-s FGGF"),
    # the zap keeps the page cached: after the marker goes, fault-around from a
    # neighbour maps the page written before (filemap_map_pages skips a marker's PTE
    # while it is there)
    case("shmem-guard-remove-cached", NEW + f"""
        ftruncate(0, 3p)
        mmap(@0, 3p, {RW}, {FS}, 0, 0)
        touch(@1, write)
        touch(@2, write)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        touch(@0, read)
        madvise(@1, 1p, MADV_GUARD_REMOVE)
        touch(@0, write)
        madvise(@0, 1p, MADV_DONTNEED)
        touch(@0, read)
        """, ["0", "0", "@0", "-", "-", "0", "-", "0", "-", "0", "-"], "@0-2 rw-s FFF"),
    # a hole punch and truncation unmap the object's pages (unmap_mapping_range), not
    # the markers: the guard still raises SIGSEGV where the file has ended, before
    # SIGBUS could; DONTNEED keeps it as for anonymous memory
    case("shmem-guard-remove-truncate-keep", NEW + f"""
        ftruncate(0, 3p)
        mmap(@0, 3p, {RW}, {FS}, 0, 0)
        touch(@1, write)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        madvise(@0, 3p, MADV_REMOVE)
        touch(@1, read)
        ftruncate(0, 0)
        touch(@1, read)
        touch(@2, read)
        ftruncate(0, 3p)
        madvise(@0, 3p, MADV_DONTNEED)
        touch(@1, write)
        """, ["0", "0", "@0", "-", "0", "0", SEGV, "0", SEGV, "SIGBUS/ADRERR", "0", "0",
              SEGV], "@0-2 rw-s .G."),
    # the guard is in the page tables of one mapping, not in the object: another
    # mapping of the same memfd reads the page
    case("memfd-guard-per-mapping", NEW + f"""
        ftruncate(0, 1p)
        mmap(@0, 1p, {RW}, {FS}, 0, 0)
        mmap(@2, 1p, {RW}, {FS}, 0, 0)
        touch(@0, write)
        madvise(@0, 1p, MADV_GUARD_INSTALL)
        touch(@2, read)
        touch(@0, read)
        """, ["0", "0", "@0", "@2", "-", "0", "-", SEGV], "@0 rw-s G; @2 rw-s F"),
    # install sets VM_MAYBE_GUARD on the whole VMA, and vma_needs_copy copies the page
    # tables of such a VMA to a fork child: markers and shmem pages (now mapped twice);
    # a shared VMA without guards is refaulted from the cache, so the child has nothing
    case("shmem-guard-fork", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        fork()
        p1: touch(@1, read)
        """, ["@0", "@2", "0", "pid", SEGV], "@0-3 rw-s fG.."),
    # VM_MAYBE_GUARD is sticky: removing the markers leaves it, so fork still copies the
    # page tables; a new mapping that merges with the VMA takes it along (VM_STICKY is
    # ignored by is_mergeable_vma and given to the merged VMA)
    case("memfd-guard-sticky", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 2p, {RW}, {FS}, 0, 0)
        touch(@0, write)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        madvise(@1, 1p, MADV_GUARD_REMOVE)
        mmap(@2, 2p, {RW}, {FS}, 0, 8192)
        touch(@3, write)
        fork()
        p1: madvise(@0, 1p, MADV_NORMAL)
        """, ["0", "0", "@0", "-", "0", "0", "@2", "-", "pid", "0"], "@0-3 rw-s f..f"),
    # ... also where the merge comes with mlockall's population: the page it faults in
    # before the marker is in the merged VMA, whose page tables fork copies (a campaign
    # bucket, presence: fork left pages not shmem, was the model losing VM_MAYBE_GUARD
    # on that page as it faulted it in: a false alarm)
    case("shmem-guard-sticky-mlockall-fork", f"""
        mmap(@0, 2p, PROT_READ, {AS}, -1, 0)
        mlock2(@0, 1p, MLOCK_ONFAULT)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        mlockall(MCL_CURRENT)
        fork()
        """, ["@0", "0", "0", "0", "pid"], "@0-1 r--s lo fG"),
    # a memfd mapped private: markers and the VMA's anon_vma as for anonymous memory;
    # fork copies the page-cache page and the private copy alike
    case("memfd-private-guard-fork", NEW + f"""
        ftruncate(0, 3p)
        mmap(@0, 3p, {RW}, {FP}, 0, 0)
        touch(@0, read)
        touch(@2, write)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        madvise(@0, 3p, MADV_REMOVE)
        fork()
        p1: touch(@1, write)
        """, ["0", "0", "@0", "-", "-", "0", "-EACCES", "pid", SEGV], "@0-2 rw-p fGa"),
    # mlock of a shared VMA with a marker: __mm_populate's GUP faults on it, EFAULT,
    # which mlock reports as ENOMEM; the VMA is locked, the page after it stays absent.
    # Installing in the locked VMA is EINVAL, removing is allowed
    case("shmem-guard-mlock", f"""
        mmap(@0, 3p, {RW}, {AS}, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        mlock(@0, 3p)
        madvise(@2, 1p, MADV_GUARD_INSTALL)
        madvise(@1, 1p, MADV_GUARD_REMOVE)
        """, ["@0", "0", "-ENOMEM", "-EINVAL", "0"], "@0-2 rw-s lo F..", locked=3),
    # mremap moves the markers with the VMA, outside the arena too: mlockall's
    # __mm_populate faults on the moved marker (EFAULT) and goes on at the next VMA, so
    # with the marker first nothing of that VMA is faulted in, and the arena's page is
    # mapped once (a campaign's false alarm: the model populated the whole moved VMA).
    # With a page before the marker, its read fault maps around (do_fault_around), past
    # the marker, the page the arena cached first (mlockall walks it first): mapped twice.
    case("shmem-guard-moved-outside-first", f"""
        mmap(@0, 2p, PROT_READ, {AS}, -1, 0)
        madvise(@0, 1p, MADV_GUARD_INSTALL)
        mremap(@0, 1p, 2p, MREMAP_MAYMOVE, @0)
        mlockall(MCL_CURRENT)
        """, ["@0", "0", "outside", "0"], "@1 r--s lo F"),
    case("shmem-guard-moved-outside-second", f"""
        mmap(@0, 3p, PROT_READ, {AS}, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        mremap(@0, 2p, 3p, MREMAP_MAYMOVE, @0)
        mlockall(MCL_CURRENT)
        """, ["@0", "0", "outside", "0"], "@2 r--s lo f"),
    # munmap and MAP_FIXED take the markers with the page tables
    case("shmem-guard-remap", f"""
        mmap(@0, 2p, {RW}, {AS}, -1, 0)
        madvise(@0, 2p, MADV_GUARD_INSTALL)
        mmap(@0, 2p, {RW}, {AS}, -1, 0)
        touch(@1, read)
        """, ["@0", "0", "@0", "-"], "@0-1 rw-s .F"),
    # before 6.15 is_valid_guard_vma wanted an anonymous VMA: a shmem object or a
    # memfd, shared or private, is EINVAL
    case("shmem-guard-einval-before-6.15", NEW + f"""
        ftruncate(0, 1p)
        mmap(@0, 1p, {RW}, {AS}, -1, 0)
        mmap(@1, 1p, {RW}, {FS}, 0, 0)
        mmap(@2, 1p, {RW}, {FP}, 0, 0)
        madvise(@0, 3p, MADV_GUARD_INSTALL)
        madvise(@1, 2p, MADV_GUARD_INSTALL)
        madvise(@2, 1p, MADV_GUARD_INSTALL)
        """, ["0", "0", "@0", "@1", "@2", "-EINVAL", "-EINVAL", "-EINVAL"],
        "@0-1 rw-s ..; @2 rw-p .", features={"shmem_guards": False}),
]


def test_table() -> None:
    check_table(ROWS, at_least=24)


@pytest.mark.parametrize("c", model_params(ROWS))
def test_model(c: Case) -> None:
    check_model(c)
