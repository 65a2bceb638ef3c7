"""MADV_PAGEOUT and MADV_COLD without swap (docs/SEMANTICS.md §16, mm/madvise.c, mm/vmscan.c).

MADV_PAGEOUT isolates the pages of the range that are mapped once and reclaims
them at once (reclaim_pages -> shrink_folio_list). With no swap device an
anonymous page cannot be written out and stays; a shmem (anonymous shared or
memfd) page is unmapped, then kept in the page cache if dirty (shmem_writeout
redirties it) or freed if clean. The zero page, pages mapped twice (`f`, `aN`)
and locked VMAs (EINVAL) are left alone. A page MADV_FREE lazily freed is
discarded while it is still clean (try_to_unmap_one), kept and swap-backed again
once written (the `pageout-lazy-*` rows). MADV_COLD only deactivates: nothing
the oracle sees changes. Every expectation comes from the kernel function named
above the row, not from running the model; `test_model_pageout_kernel.py` runs
the same table on the real kernel (which must have no swap: feature `no_swap`).
"""

from __future__ import annotations

import random

import pytest

from fuzzer.model import SUPPORTED, State, Unsupported, covers
from fuzzer.model.features import NEWEST
from fuzzer.prog.generate import ByteSource, generate
from fuzzer.prog.syscalls import MADV_PAGEOUT, MAP_DROPPABLE, MAP_TYPE
from tests.tables import Case, case, check_model, check_table, model_params, run_model

RW, AP = "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"
AS = "MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED"
FS, FP = "MAP_SHARED|MAP_FIXED", "MAP_PRIVATE|MAP_FIXED"
NO_SWAP = {"no_swap": True}

ROWS = [
    # shrink_folio_list: an anonymous page needs add_to_swap, which fails without swap
    # (activate_locked): the written pages stay; the zero page is no folio
    # (vm_normal_folio) and is skipped
    case("pageout-anon-stays", f"""
        mmap(@0, 4p, {RW}, {AP}, -1, 0)
        touch(@0, read)
        touch(@1, write)
        touch(@3, write)
        madvise(@0, 4p, MADV_PAGEOUT)
        madvise(@0, 4p, MADV_COLD)
        """, ["@0", "-", "-", "-", "0", "0"], "@0-3 rw-p ZA.A", features=NO_SWAP),
    # can_madv_lru_vma: VM_LOCKED (lock-on-fault too) is EINVAL for both advice
    case("pageout-locked", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mmap(@2, 1p, {RW}, {AP}, -1, 0)
        mlock2(@2, 1p, MLOCK_ONFAULT)
        madvise(@0, 2p, MADV_PAGEOUT)
        madvise(@0, 2p, MADV_COLD)
        madvise(@2, 1p, MADV_PAGEOUT)
        madvise(@2, 1p, MADV_COLD)
        """, ["@0", "@2", "0", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL"],
        "@0-1 rw-p lo AA; @2 rw-p lo lf .", locked=3, features=NO_SWAP),
    # shared anonymous memory is shmem: a page only read is clean and freed from the
    # cache (__remove_mapping); a written one is dirty, unmapped but kept. A later read
    # fault's fault-around maps what the cache still holds, the dirty page
    case("pageout-shared-anon", f"""
        mmap(@0, 3p, {RW}, {AS}, -1, 0)
        touch(@0, read)
        touch(@1, write)
        madvise(@0, 3p, MADV_PAGEOUT)
        touch(@2, read)
        """, ["@0", "-", "-", "0", "-"], "@0-2 rw-s .FF", features=NO_SWAP),
    # a memfd: the page written through the shared mapping stays cached, the one only
    # read goes; in the private mapping the cache page goes too (it is clean), the
    # private copy (anonymous) stays. The read of @2 maps by fault-around the cached
    # offsets 0 and 3 (3 was cached by the copy-on-write fault, clean but never mapped)
    case("pageout-memfd", f"""
        memfd_create()
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}, 0, 0)
        touch(@0, write)
        touch(@1, read)
        mmap(@4, 2p, {RW}, {FP}, 0, 0x2000)
        touch(@4, read)
        touch(@5, write)
        madvise(@0, 6p, MADV_PAGEOUT)
        touch(@2, read)
        """, ["0", "0", "@0", "-", "-", "@4", "-", "-", "0", "-"],
        "@0-3 rw-s F.FF; @4-5 rw-p .A", features=NO_SWAP),
    # folio_maybe_mapped_shared: a cache page mapped twice is not touched; once the
    # other mapping is gone it is reclaimed (clean: freed, so a read maps a new page)
    case("pageout-mapped-twice", f"""
        memfd_create()
        ftruncate(0, 1p)
        mmap(@0, 1p, {RW}, {FS}, 0, 0)
        mmap(@2, 1p, PROT_READ, {FS}, 0, 0)
        touch(@0, read)
        touch(@2, read)
        madvise(@0, 1p, MADV_PAGEOUT)
        munmap(@2, 1p)
        madvise(@0, 1p, MADV_PAGEOUT)
        """, ["0", "0", "@0", "@2", "-", "-", "0", "0", "0"], "@0 rw-s .",
        features=NO_SWAP),
    # fork leaves the private pages shared (aN): mapped twice, skipped in either process
    case("pageout-after-fork", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@2, 1p, {RW}, {AS}, -1, 0)
        touch(@2, read)
        fork()
        p1: madvise(@0, 3p, MADV_PAGEOUT)
        madvise(@0, 3p, MADV_PAGEOUT)
        p1: exit()
        madvise(@0, 3p, MADV_PAGEOUT)
        """, ["@0", "@2", "-", "pid", "0", "0", "exit", "0"], "@0-1 rw-p AA; @2 rw-s .",
        features=NO_SWAP),
    # madvise_walk_vmas: a hole is ENOMEM at the end, the VMAs around it are reclaimed
    case("pageout-hole", f"""
        mmap(@0, 1p, {RW}, {AS}, -1, 0)
        mmap(@2, 1p, {RW}, {AS}, -1, 0)
        touch(@0, read)
        touch(@2, read)
        madvise(@0, 3p, MADV_PAGEOUT)
        """, ["@0", "@2", "-", "-", "-ENOMEM"], "@0 rw-s .; @2 rw-s .", features=NO_SWAP),
    # MADV_PAGEOUT is no discard for can_madvise_modify: a sealed read-only VMA allows it
    case("pageout-sealed", f"""
        mmap(@0, 1p, PROT_READ, {AS}, -1, 0)
        touch(@0, read)
        mseal(@0, 1p, 0)
        madvise(@0, 1p, MADV_PAGEOUT)
        """, ["@0", "-", "0", "0"], "@0 r--s sl .", features=NO_SWAP),
    # MADV_FREE (madvise_free_pte_range) cleans the PTE and folio_mark_lazyfree clears the
    # folio's swap-backed flag; madvise_pageout's lru_add_drain moves it to the lazy-free
    # list before it isolates it. try_to_unmap_one then discards a lazy folio that is
    # still clean (a read leaves it clean): the next read maps the zero page. A write
    # since sets the PTE's dirty bit, which try_to_unmap_one moves to the folio: the PTE
    # is put back and the folio is swap-backed again, so it stays
    case("pageout-lazy-free", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        madvise(@0, 4p, MADV_FREE)
        touch(@1, write)
        touch(@2, read)
        madvise(@0, 4p, MADV_PAGEOUT)
        touch(@0, read)
        """, ["@0", "0", "-", "-", "0", "-"], "@0-3 rw-p ZA..", features=NO_SWAP),
    # the page written after MADV_FREE is swap-backed again: a second PAGEOUT keeps it;
    # another MADV_FREE (the folio mapped once: its dirty flag cleared) makes it lazy
    # and clean again, and PAGEOUT drops it
    case("pageout-lazy-free-again", f"""
        mmap(@0, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        madvise(@0, 1p, MADV_FREE)
        touch(@0, write)
        madvise(@0, 1p, MADV_PAGEOUT)
        madvise(@0, 1p, MADV_PAGEOUT)
        madvise(@0, 1p, MADV_FREE)
        madvise(@0, 1p, MADV_PAGEOUT)
        """, ["@0", "0", "-", "0", "0", "0", "0"], "@0 rw-p .", features=NO_SWAP),
    # GUP with FOLL_TOUCH|FOLL_WRITE on a clean PTE marks the folio dirty (follow_page_pte):
    # MADV_POPULATE_WRITE, and mlock of a writable private VMA (populate_vma_page_range
    # asks for write access), keep the lazy page; POPULATE_READ and mlock of a read-only
    # VMA only mark it accessed, and it is dropped (munlock's batch is drained with the
    # rest by lru_add_drain)
    case("pageout-lazy-gup", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        madvise(@0, 4p, MADV_FREE)
        madvise(@0, 1p, MADV_POPULATE_WRITE)
        madvise(@1, 1p, MADV_POPULATE_READ)
        mlock(@2, 1p)
        munlock(@2, 1p)
        mprotect(@3, 1p, PROT_READ)
        mlock(@3, 1p)
        munlock(@3, 1p)
        madvise(@0, 4p, MADV_PAGEOUT)
        """, ["@0", "0", "0", "0", "0", "0", "0", "0", "0", "0"],
        "@0-2 rw-p A.A; @3 r--p .", features=NO_SWAP),
    # lock-on-fault populates nothing, so the lazy page stays clean and is dropped (@0);
    # mlockall(MCL_CURRENT) populates every VMA like mlock: a write GUP dirties the lazy
    # folio of the writable VMA (@2, kept), a read GUP leaves the read-only one's clean
    # (@4, dropped), and faults the dropped @0 in again
    case("pageout-lazy-lock", f"""
        mmap(@0, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@2, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@4, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        madvise(@0, 5p, MADV_FREE)
        mlock2(@0, 1p, MLOCK_ONFAULT)
        munlock(@0, 1p)
        madvise(@0, 1p, MADV_PAGEOUT)
        mprotect(@4, 1p, PROT_READ)
        mlockall(MCL_CURRENT)
        munlockall()
        madvise(@0, 5p, MADV_PAGEOUT)
        """, ["@0", "@2", "@4", "-ENOMEM", "0", "0", "0", "0", "0", "0", "-ENOMEM"],
        "@0 rw-p A; @2 rw-p A; @4 r--p .", features=NO_SWAP),
    # a page munlocked before MADV_FREE: MADV_FREE's lru_add_drain drains the munlock batch
    # first, so the folio is evictable and folio_mark_lazyfree takes it
    case("pageout-lazy-after-munlock", f"""
        mmap(@0, 1p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        touch(@0, write)
        munlock(@0, 1p)
        madvise(@0, 1p, MADV_FREE)
        madvise(@0, 1p, MADV_PAGEOUT)
        """, ["@0", "-", "0", "0", "0"], "@0 rw-p .", features=NO_SWAP),
    # the lazy page keeps its clean PTE through mremap (move_ptes) and mprotect
    # (change_pte_range): dropped where it went, whatever the protection
    case("pageout-lazy-moved", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        madvise(@0, 2p, MADV_FREE)
        mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @4)
        mprotect(@1, 1p, PROT_NONE)
        madvise(@1, 1p, MADV_PAGEOUT)
        madvise(@4, 1p, MADV_PAGEOUT)
        """, ["@0", "0", "@4", "0", "0", "0"], "@1 ---p .; @4 rw-p .", features=NO_SWAP),
    # fork copies the clean PTE (copy_present_ptes): the lazy frame is shared (skipped by
    # PAGEOUT) and a write to it copies it (do_wp_page), so the PTEs left on it stay
    # clean. Once one mapping is left the frame is exclusive, lazy and clean: dropped;
    # the child's own copy is an ordinary page and stays
    case("pageout-lazy-fork", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        madvise(@0, 2p, MADV_FREE)
        fork()
        p1: touch(@0, write)
        madvise(@0, 2p, MADV_PAGEOUT)
        p1: madvise(@0, 2p, MADV_PAGEOUT)
        p1: exit()
        madvise(@0, 2p, MADV_PAGEOUT)
        """, ["@0", "0", "pid", "-", "0", "0", "exit", "0"], "@0-1 rw-p ..",
        features=NO_SWAP),
    # process_madvise of another process: the folio the child freed on this CPU is on
    # the lazy-free list once the caller's lru_add_drain ran; the clean one is dropped, the
    # one written since stays
    case("pageout-lazy-remote", f"""
        fork()
        p1: mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        p1: madvise(@0, 2p, MADV_FREE)
        p1: touch(@1, write)
        process_madvise(p1, @0, 2p, @0, 0, 1, MADV_PAGEOUT, 0)
        p1: touch(@0, read)
        """, ["pid", "@0", "0", "-", "8192", "-"], "@0-1 rw-p ZA", features=NO_SWAP),
    # POPULATE_WRITE dirties the shared page it finds mapped (FOLL_TOUCH|FOLL_WRITE): kept
    case("pageout-populate-write-dirties", f"""
        mmap(@0, 2p, {RW}, {AS}, -1, 0)
        touch(@0, read)
        madvise(@0, 1p, MADV_POPULATE_WRITE)
        madvise(@0, 2p, MADV_PAGEOUT)
        touch(@1, read)
        """, ["@0", "-", "0", "0", "-"], "@0-1 rw-s FF", features=NO_SWAP),
]


def test_table() -> None:
    check_table(ROWS, at_least=17)


@pytest.mark.parametrize("c", model_params(ROWS))
def test_model(c: Case) -> None:
    check_model(c)


def test_pageout_after_free_of_a_shared_frame_is_refused() -> None:
    """MADV_FREE of a frame fork shared makes its folio lazy-free with only the caller's
    PTE cleaned (madvise_free_pte_range skips the mapcount check for a folio that is not
    PG_dirty, and skips the page altogether when it is). On 6.18.44 the page then stays
    in the process whose PTE was dirty and goes in the one that freed it; the model keeps
    neither the other PTEs' dirty bits nor PG_dirty, so MADV_PAGEOUT over an `A` page is
    Unsupported after it, in every process. Other pages are still predicted."""
    text = f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        fork()
        madvise(@0, 1p, MADV_FREE)
        p1: exit()
        """
    run_model(text + f"mmap(@2, 1p, {RW}, {AS}, -1, 0)\nmadvise(@2, 1p, MADV_PAGEOUT)\n"
              "madvise(@0, 2p, MADV_COLD)\n")
    with pytest.raises(Unsupported, match="fork shared"):
        run_model(text + "madvise(@1, 1p, MADV_PAGEOUT)\n")
    # a frame shared from a lazy page is lazy and clean in every process: no refusal
    results, state = run_model(f"""
        mmap(@0, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        madvise(@0, 1p, MADV_FREE)
        fork()
        madvise(@0, 1p, MADV_FREE)
        p1: exit()
        madvise(@0, 1p, MADV_PAGEOUT)
        """)
    assert results == ["@0", "0", "pid", "0", "exit", "0"]
    assert state.pages[0] is not None and state.pages[0].state == "."


def test_pageout_with_swap_is_refused() -> None:
    state = State(features=NEWEST.__class__(no_swap=False))
    with pytest.raises(Unsupported):
        run_model(f"mmap(@0, 1p, {RW}, {AP}, -1, 0)\nmadvise(@0, 1p, MADV_PAGEOUT)\n", state)
    # a locked VMA is EINVAL before reclaim is asked for anything
    results, _ = run_model(f"mmap(@0, 1p, {RW}, {AP}|MAP_LOCKED, -1, 0)\n"
                           "madvise(@0, 1p, MADV_PAGEOUT)\n",
                           State(features=NEWEST.__class__(no_swap=False)))
    assert results == ["@0", "-EINVAL"]


def test_generator_makes_pageout_and_droppable() -> None:
    """Both reach campaigns: the generator's tables name them, and the model covers them."""
    rng = random.Random(3)
    advice, types = set(), set()
    for _ in range(500):
        for call in generate(ByteSource(rng.randbytes(300)), SUPPORTED, covers).calls:
            if call.name == "madvise":
                advice.add(call.arg("advice"))
            elif call.name == "mmap":
                types.add(call.arg("flags") & MAP_TYPE)
    assert MADV_PAGEOUT in advice and MAP_DROPPABLE in types
