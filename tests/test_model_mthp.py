"""Anonymous mTHP (large folios) against hand-derived expectations (docs/SEMANTICS.md §19).

With an mTHP size enabled for MADV_HUGEPAGE VMAs (`Features.mthp_orders`; the kernel
twin `test_model_mthp_kernel.py` sets hugepages-64kB/enabled to "madvise" for its
rows, and 16kB too where a row wants both), a write fault on a none PTE of a
VM_HUGEPAGE private anonymous VMA maps the highest enabled order whose naturally
aligned block lies inside the VMA with every PTE none (mm/memory.c alloc_anon_folio).
A read fault maps the zero page, one page. Everything after works page by page:
munmap, MADV_DONTNEED, mprotect, mlock and mremap take single pages of the folio, a
copy on write copies one page, and pagemap's exclusive bit is per page
(folio_precise_page_mapcount, CONFIG_PAGE_MAPCOUNT). The render shows a page of a
large folio as `A` like any other: which pages were faulted together is what the rows
check. Every row was derived from the kernel function named above it and holds on
6.18.44 (the twin).
"""

from __future__ import annotations

import pytest

from fuzzer.model.features import NEWEST
from fuzzer.model.pages import Unsupported
from fuzzer.model.state import State
from tests.tables import Case, case, check_model, check_table, model_params, run_model

RW, AP = "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS"
FIXED = f"{AP}|MAP_FIXED"
K64 = {"mthp_orders": 1 << 4}  # hugepages-64kB: 16-page blocks
K16_64 = {"mthp_orders": 1 << 2 | 1 << 4}  # and hugepages-16kB: 4-page blocks
# A VMA of 32 pages, @16-47: two 16-page blocks (@16-31, @32-47), MADV_HUGEPAGE
HG = f"""
        mmap(@16, 32p, {RW}, {FIXED}, -1, 0)
        madvise(@16, 32p, MADV_HUGEPAGE)"""
HG_OK = ["@16", "0"]
NONE16 = "." * 16
BLOCK = "A" * 16

ROWS = [
    # Hunt bucket (6.18.44, 16-128 kB on): mprotect_fixup makes the VMA writable whole
    # (@2-5 merges back with @6-7), then populates the locked range with write faults:
    # the fault at @4 maps the 16 kB block @4-7, past the range mprotect was given. The
    # model changed and faulted page by page, each fault seeing a VMA of one page.
    case("mthp-mprotect-populate-maps-block", """
        mmap(@2, 6p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@2, 6p, MADV_HUGEPAGE)
        process_madvise(p0, @2, 6p, @0, 1p, 2, MADV_DONTNEED_LOCKED, 0)
        mprotect(@2, 4p, PROT_NONE)
        mprotect(@2, 4p, PROT_READ|PROT_WRITE)
        """, ["@2", "0", "24576", "0", "0"], "@2-7 rw-p lo AAAAAA", locked=6,
         features=K16_64),
    # alloc_anon_folio: thp_vma_suitable_orders keeps order 4 (@16-31 lies inside the
    # VMA) and pte_range_none holds: the whole block is allocated and mapped (set_ptes)
    case("mthp-write-fault-maps-block", f"""{HG}
        touch(@20, write)
        """, [*HG_OK, "-"], f"@16-47 rw-p {BLOCK}{NONE16}", features=K64),
    # without mTHP (the default, and every kernel before this change): one page
    case("mthp-off-write-fault-one-page", f"""{HG}
        touch(@20, write)
        """, [*HG_OK, "-"], f"@16-47 rw-p ....A{'.' * 27}", features={"mthp_orders": 0}),
    # not VM_HUGEPAGE: the executor's PR_THP_DISABLE_EXCEPT_ADVISED (vma_thp_disabled)
    case("mthp-not-advised-one-page", f"""
        mmap(@16, 32p, {RW}, {FIXED}, -1, 0)
        touch(@20, write)
        """, ["@16", "-"], f"@16-47 rw-p ....A{'.' * 27}", features=K64),
    # do_anonymous_page: a read maps the zero page, never a folio; a write next to it
    # finds a PTE that is not none in the block, so one page
    case("mthp-read-maps-zero-page", f"""{HG}
        touch(@20, read)
        touch(@21, write)
        """, [*HG_OK, "-", "-"], f"@16-47 rw-p ....ZA{'.' * 26}", features=K64),
    # ... and a write to the zero page copies it to one page (do_wp_page -> wp_page_copy)
    case("mthp-write-over-zero-page", f"""{HG}
        touch(@20, read)
        touch(@20, write)
        """, [*HG_OK, "-", "-"], f"@16-47 rw-p ....A{'.' * 27}", features=K64),
    # thp_vma_suitable_orders: the block @16-31 crosses the VMA's end (@29)
    case("mthp-block-crosses-vma-end", f"""
        mmap(@16, 14p, {RW}, {FIXED}, -1, 0)
        madvise(@16, 14p, MADV_HUGEPAGE)
        touch(@20, write)
        """, ["@16", "0", "-"], "@16-29 rw-p ....A.........", features=K64),
    # ... and the VMA's start: an mprotect split the block's first pages off
    case("mthp-block-crosses-vma-start", f"""{HG}
        mprotect(@16, 2p, PROT_READ)
        touch(@20, write)
        touch(@40, write)
        """, [*HG_OK, "0", "-", "-"],
        f"@16-17 r--p ..; @18-47 rw-p ..A...........{BLOCK}", features=K64),
    # pte_range_none fails on a page faulted before MADV_HUGEPAGE: one page
    case("mthp-block-with-present-page", f"""
        mmap(@16, 32p, {RW}, {FIXED}, -1, 0)
        touch(@17, write)
        madvise(@16, 32p, MADV_HUGEPAGE)
        touch(@20, write)
        """, ["@16", "-", "0", "-"], f"@16-47 rw-p .A..A{'.' * 27}", features=K64),
    # ... and then the highest order that is none: with 16kB enabled too, @20-23
    case("mthp-falls-to-smaller-order", f"""
        mmap(@16, 32p, {RW}, {FIXED}, -1, 0)
        touch(@17, write)
        madvise(@16, 32p, MADV_HUGEPAGE)
        touch(@21, write)
        """, ["@16", "-", "0", "-"], f"@16-47 rw-p .A..AAAA{'.' * 24}", features=K16_64),
    # a guard marker is not a none PTE either (§15)
    case("mthp-guard-in-block", f"""{HG}
        madvise(@20, 1p, MADV_GUARD_INSTALL)
        touch(@22, write)
        touch(@40, write)
        """, [*HG_OK, "0", "-", "-"], f"@16-47 rw-p ....G.A.........{BLOCK}", features=K64),
    # MADV_NOHUGEPAGE clears VM_HUGEPAGE (and splits the VMA): one page there
    case("mthp-nohugepage", f"""{HG}
        madvise(@32, 16p, MADV_NOHUGEPAGE)
        touch(@40, write)
        touch(@20, write)
        """, [*HG_OK, "0", "-", "-"], f"@16-47 rw-p {BLOCK}........A.......", features=K64),
    # zap_pte_range: munmap and MADV_DONTNEED take single pages of the folio; a write in
    # the hole finds present neighbours in its block: one page
    case("mthp-partial-munmap-dontneed", f"""{HG}
        touch(@20, write)
        munmap(@18, 2p)
        madvise(@21, 2p, MADV_DONTNEED)
        touch(@21, read)
        touch(@22, write)
        """, [*HG_OK, "-", "0", "0", "-", "-"],
        f"@16-17 rw-p AA; @20-47 rw-p AZ{'A' * 10}{NONE16}", features=K64),
    # change_pte_range: mprotect keeps the pages; the read-only part stays present
    case("mthp-mprotect-part", f"""{HG}
        touch(@20, write)
        mprotect(@24, 4p, PROT_READ)
        """, [*HG_OK, "-", "0"],
        f"@16-23 rw-p AAAAAAAA; @24-27 r--p AAAA; @28-47 rw-p AAAA{NONE16}", features=K64),
    # mlock_fixup splits the VMA; Locked is the locked VMA's Pss, VmLck its size
    case("mthp-mlock-part", f"""{HG}
        touch(@20, write)
        mlock(@20, 4p)
        """, [*HG_OK, "-", "0"],
        f"@16-19 rw-p AAAA; @20-23 rw-p lo AAAA; @24-47 rw-p {'A' * 8}{NONE16}",
        locked=4, features=K64),
    # mlock populates with write faults (FOLL_WRITE): in the whole VMA each fault maps
    # a block; munlock of a part leaves only the rest counted in VmLck
    case("mthp-mlock-populates-blocks-munlock-part", f"""{HG}
        mlock(@16, 32p)
        munlock(@20, 4p)
        """, [*HG_OK, "0", "0"],
        f"@16-19 rw-p lo AAAA; @20-23 rw-p AAAA; @24-47 rw-p lo {'A' * 24}",
        locked=28, features=K64),
    # mlock of one page splits a one-page VMA off: no block fits, one page populated
    case("mthp-mlock-one-page", f"""{HG}
        mlock(@20, 1p)
        """, [*HG_OK, "0"], "@16-19 rw-p ....; @20 rw-p lo A; @21-47 rw-p " + "." * 27,
        locked=1, features=K64),
    # madvise_populate -> faultin_page_range: GUP's write fault maps the block
    case("mthp-populate-write", f"""{HG}
        madvise(@20, 1p, MADV_POPULATE_WRITE)
        """, [*HG_OK, "0"], f"@16-47 rw-p {BLOCK}{NONE16}", features=K64),
    # ... a read fault the zero page
    case("mthp-populate-read", f"""{HG}
        madvise(@20, 1p, MADV_POPULATE_READ)
        """, [*HG_OK, "0"], f"@16-47 rw-p ....Z{'.' * 27}", features=K64),
    # move_ptes moves single PTEs of the folio; the moved VMA keeps VM_HUGEPAGE, and a
    # fault in a block of it that fits maps a block (no pgoff check for anonymous VMAs)
    case("mthp-mremap-part", f"""{HG}
        touch(@20, write)
        mremap(@24, 4p, 4p, MREMAP_MAYMOVE|MREMAP_FIXED, @52)
        """, [*HG_OK, "-", "@52"],
        f"@16-23 rw-p AAAAAAAA; @28-47 rw-p AAAA{NONE16}; @52-55 rw-p AAAA", features=K64),
    case("mthp-mremap-unaligned-then-fault", f"""
        mmap(@4, 24p, {RW}, {FIXED}, -1, 0)
        madvise(@4, 24p, MADV_HUGEPAGE)
        touch(@4, write)
        mremap(@4, 24p, 24p, MREMAP_MAYMOVE|MREMAP_FIXED, @40)
        touch(@50, write)
        """, ["@4", "0", "-", "@40", "-"], f"@40-63 rw-p A.......{BLOCK}", features=K64),
    # copy_present_ptes shares every page of the folio with the child; a write copies
    # one page (wp_page_copy), after which the parent's page is mapped once: exclusive
    # (pagemap's X bit per page, folio_precise_page_mapcount)
    case("mthp-fork-cow-one-page", f"""{HG}
        touch(@20, write)
        fork()
        p1: touch(@20, write)
        p0: touch(@21, read)
        """, [*HG_OK, "-", "pid", "-", "-"], f"@16-47 rw-p aaaaAaaaaaaaaaaa{NONE16}",
        features=K64),
    # the child inherits PR_THP_DISABLE_EXCEPT_ADVISED (MMF_INIT_MASK) and the VMA's
    # VM_HUGEPAGE: its own write fault in an empty block maps a block
    case("mthp-fork-child-faults-block", f"""{HG}
        touch(@20, write)
        fork()
        p1: touch(@40, write)
        """, [*HG_OK, "-", "pid", "-"], f"@16-47 rw-p {'a' * 16}{BLOCK}", features=K64),
]


@pytest.mark.parametrize("c", model_params(ROWS))
def test_mthp_model(c: Case) -> None:
    check_model(c)


def test_table_shape() -> None:
    check_table(ROWS, at_least=21)


@pytest.mark.parametrize("advice", ["MADV_FREE", "MADV_COLD", "MADV_PAGEOUT"])
def test_split_is_not_modelled(advice: str) -> None:
    """FREE, COLD and PAGEOUT split a large folio, mapping its zero-filled pages to the zero
    page (§19): by contents the model does not keep, so it refuses them there."""
    with pytest.raises(Unsupported):
        run_model(f"""{HG}
            touch(@20, write)
            madvise(@20, 2p, {advice})
            """, State(features=NEWEST.__class__(mthp_orders=1 << 4)))
    # and on a page of no large folio they are modelled as before
    run_model(f"""{HG}
        touch(@40, read)
        touch(@20, write)
        madvise(@40, 1p, {advice})
        """, State(features=NEWEST.__class__(mthp_orders=1 << 2)))
