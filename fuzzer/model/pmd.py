"""PMD-mapped transparent huge pages: what each 2 MiB region of the huge arena holds at
the page-table level (docs/SEMANTICS.md §22; pure).

Only the huge arena (`MMFUZZ_ARENA=huge`, fuzzer/prog/arena.py) holds an aligned 2 MiB
region whole, so only there can a fault map a PMD: in the 64-page arena
`REGIONS` is 0, `State.pmds` is empty and nothing here runs.

Whether a fault maps a huge page depends on something no smaps field shows: whether
the region already has a page table. `__handle_mm_fault` tries `create_huge_pmd` only
on a none PMD; under a page table the fault takes the PTE path, and orders below
PMD_ORDER (`pages.anon_folio`). So each process keeps, per region, one of:

    ""  no page table (pmd_none): the next fault in a VM_HUGEPAGE VMA that covers the
        region whole maps a huge page (write) or the huge zero page (read)
    "t" a page table: PTE-mapped pages, guard markers, or none left after zaps
    "H" a PMD maps a huge page (the region's pages are `A+`, `aN+`)
    "Z" a PMD maps the huge zero page (the region's pages are `Z`)
    "?" maybe a page table, maybe none: a zap that emptied a whole region's table,
        which CONFIG_PT_RECLAIM (6.14+) frees and older kernels keep. A fault that
        needs to know raises Unsupported.

The per-page model carries on underneath: a split of the PMD keeps every page of the
folio where it was (a probe on 6.18.44: munmap, MADV_DONTNEED, mprotect, mlock and
mremap of part of a huge page leave the other pages present, in the same folio), so
what changes on a split is only this state. `settle` works it out after every call
from the pages and VMAs; `moved` and `zapped` handle what the pages alone cannot tell
(a page table mremap carries along, a table a zap may free).
"""

from __future__ import annotations

from fuzzer.model import vmas
from fuzzer.model.state import (
    ABSENT,
    ANON_LARGE,
    LARGE,
    PMD_ORDER,
    PMD_REGIONS,
    SHARED_ANON,
    ZERO,
    Page,
    State,
)
from fuzzer.prog.arena import PMD_PAGES

REGIONS = PMD_REGIONS  # whole 2 MiB regions in the arena (0 or 2)
NONE, TABLE, HUGE, HUGE_ZERO, UNKNOWN = "", "t", "H", "Z", "?"


def pmd_allowed(state: State, idx: int) -> bool:
    """thp_vma_allowable_order(PMD_ORDER) and thp_vma_suitable_order for a fault at idx:
    the PMD size enabled for VM_HUGEPAGE VMAs (the probe's mthp_orders, which keeps it
    only in the huge arena), a private anonymous VM_HUGEPAGE VMA (shmem THP is off:
    `probe.shmem_thp`), and the aligned region around idx inside the VMA."""
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    if not (state.features.mthp_orders >> PMD_ORDER & 1 and a.hg and not a.obj
            and not a.shared):
        return False
    start = idx - idx % PMD_PAGES
    vma = vmas.vma_of(state, idx)
    return vma.start <= start and start + PMD_PAGES <= vma.stop


def fault(state: State, idx: int, write: bool) -> bool | None:
    """A fault at idx in a private anonymous VMA (pages.fault's first question): True if
    it mapped a PMD, False if it takes the PTE path, None if the model cannot tell
    (the region's page table may or may not be there).

    - none PMD: do_huge_pmd_anonymous_page maps a new huge page on a write, and on a
      read the huge zero page where `use_zero_page` is 1 (Features.huge_zero_page);
      both prepare the VMA's anon_vma first, so fork copies either.
    - the huge zero page, written: do_huge_zero_wp_pmd maps a new huge page
      (Features.huge_zero_wp_thp, 6.13+; before, the PMD is split into PTEs of the
      zero page and the written one is copied: the PTE path).
    - a huge page: a write to a frame fork shared splits the writer's PMD and copies
      one page (do_huge_pmd_wp_page falls back to the PTE path; `settle` sees the split).
    """
    r = idx // PMD_PAGES
    kind = state.pmds[r]
    if kind in (TABLE, HUGE) or not pmd_allowed(state, idx):
        return False
    if kind == UNKNOWN:
        return None
    if kind == HUGE_ZERO and not (write and state.features.huge_zero_wp_thp):
        return False
    start = r * PMD_PAGES
    vmas.anon_vma_at(state, idx)
    huge = write or not state.features.huge_zero_page
    letter = ANON_LARGE if huge else ZERO
    for j in range(start, start + PMD_PAGES):
        p = state.pages[j]
        assert p is not None
        state.pages[j] = Page(p.attrs, letter)
    if huge:
        state.huge_pages += 1
    else:
        state.huge_zero_pages += 1
    state.pmds[r] = HUGE if huge else HUGE_ZERO
    return True


def shared_write(state: State, idx: int) -> bool:
    """Whether a write to page idx, mapped by a PMD whose folio another mapping shares
    (some page of the region is a frame fork left shared), faults and splits: fork left
    the PMD write-protected, and do_huge_pmd_wp_page reuses the folio only when nothing
    else maps it (folio_ref_count 1); else __split_huge_pmd, and the PTE path copies the
    page (the large folio is maybe mapped shared). An exclusive page of that folio is
    copied too: invisible but for the split (`settle`)."""
    r = idx // PMD_PAGES
    if state.pmds[r] != HUGE:
        return False
    start = r * PMD_PAGES
    return any(p is not None and p.state[0] == SHARED_ANON
               for p in state.pages[start:start + PMD_PAGES])


def settle(state: State) -> None:
    """Each region's state after a call, from its pages and VMAs (see the module's
    docstring): no VMA left in it frees its table (free_pgtables: the region lies
    between the VMAs around the unmapped range); a PMD stays while one VMA covers the
    region and every page is still the huge page's (or the huge zero page); all pages
    gone from a PMD is a zap of the whole PMD (zap_huge_pmd: none again); anything else
    split it. A page that appears in a region without a table brings one.

    A region whose pages are as they were at the last settle is left as it is (pages are
    immutable: a VMA boundary or a state that moved replaced one)."""
    seen = state.pmds_seen
    for r in range(REGIONS):
        start = r * PMD_PAGES
        pages = state.pages[start:start + PMD_PAGES]
        if seen and pages == seen[start:start + PMD_PAGES]:
            continue
        kind = state.pmds[r]
        if all(p is None for p in pages):
            state.pmds[r] = NONE
        elif kind in (HUGE, HUGE_ZERO):
            if all(p is None or p.state == ABSENT for p in pages):
                state.pmds[r] = NONE
            elif not _still_mapped(state, start, pages, kind):
                state.pmds[r] = TABLE
        elif kind == NONE and any(p is not None and p.state != ABSENT for p in pages):
            state.pmds[r] = TABLE
    if REGIONS:
        state.pmds_seen = list(state.pages)


def _still_mapped(state: State, start: int, pages: list[Page | None], kind: str) -> bool:
    if kind == HUGE:
        if not all(p is not None and p.state.endswith(LARGE) for p in pages):
            return False
    elif not all(p is not None and p.state == ZERO for p in pages):
        return False
    vma = vmas.vma_of(state, start)
    return vma.stop >= start + PMD_PAGES


def zapped(state: State, pages: range) -> None:
    """After MADV_DONTNEED(_LOCKED) over `pages`: a region the range covers whole whose
    page table is now empty (no page, no guard marker) may have lost it
    (CONFIG_PT_RECLAIM: try_to_free_pte, when the zap spans the whole table) or not."""
    for r in range(REGIONS):
        start = r * PMD_PAGES
        if state.pmds[r] != TABLE or start < pages.start or start + PMD_PAGES > pages.stop:
            continue
        if all(p is None or p.state == ABSENT for p in state.pages[start:start + PMD_PAGES]):
            state.pmds[r] = UNKNOWN


def moved(state: State, src: range, dest: int | None, dontunmap: bool) -> dict[int, str]:
    """mremap's move_page_tables over the arena pages `src` to arena page `dest` (None:
    outside the arena): what each destination region gets, by region, and what the
    source regions keep (the caller calls `arrived` once the pages are there).

    A region `src` covers whole, moved by a multiple of 2 MiB, takes its PMD along
    (move_huge_pmd) or its whole page table (move_normal_pmd): the source is left
    without one, even where MREMAP_DONTUNMAP keeps the VMA. Anything else moves PTE by
    PTE (a PMD is split first): a source region with a table gives each destination
    region it reaches one (move_ptes allocates it) and keeps its own. Outside the arena
    where the kernel put it is not known here, so a whole region left behind by
    DONTUNMAP may have kept its table or not."""
    carried: dict[int, str] = {}
    for r in range(REGIONS):
        start = r * PMD_PAGES
        part = range(max(start, src.start), min(start + PMD_PAGES, src.stop))
        if not part:
            continue
        kind = state.pmds[r]
        whole = len(part) == PMD_PAGES
        if whole and dest is not None and (dest - src.start) % PMD_PAGES == 0:
            carried[(start + dest - src.start) // PMD_PAGES] = kind
            state.pmds[r] = NONE
            continue
        if kind in (HUGE, HUGE_ZERO):
            state.pmds[r] = kind = TABLE  # __split_huge_pmd, then PTE by PTE
        if whole and dest is None and dontunmap and kind != NONE:
            state.pmds[r] = UNKNOWN
        if dest is not None and kind != NONE:
            first = part.start + dest - src.start
            for d in range(first // PMD_PAGES, (first + len(part) - 1) // PMD_PAGES + 1):
                if carried.get(d) != UNKNOWN:
                    carried[d] = kind
    return carried


def arrived(state: State, carried: dict[int, str]) -> None:
    """The destination regions of a move (`moved`'s answer): a PMD or table carried
    whole becomes the region's; a table moved PTE by PTE gives a region without one a
    table (unknown stays unknown)."""
    for r, kind in carried.items():
        if r >= REGIONS or kind == NONE:
            continue
        now = state.pmds[r]
        if kind in (HUGE, HUGE_ZERO) or now == NONE or kind == UNKNOWN:
            state.pmds[r] = kind
        elif now in (HUGE, HUGE_ZERO):
            state.pmds[r] = TABLE


def forked(parent: State, child: State) -> None:
    """dup_mmap: the child's regions. copy_page_range copies a region's PMD (copy_huge_pmd,
    the huge zero page too) or allocates a table for it when a VMA there is copied with
    its page tables (`world._fork` leaves such a VMA's pages in the child); a region whose
    VMAs are all left out (DONTCOPY, WIPEONFORK, shared without an anon_vma) has none.
    A table that held nothing the child can see (every page absent) leaves it unknown."""
    for r in range(REGIONS):
        start = r * PMD_PAGES
        kind = parent.pmds[r]
        pages = child.pages[start:start + PMD_PAGES]
        if kind == NONE or all(p is None for p in pages):
            child.pmds[r] = NONE
        elif kind in (HUGE, HUGE_ZERO):
            child.pmds[r] = kind if all(p is not None and p.state != ABSENT for p in pages) \
                else NONE
        elif any(p is not None and p.state != ABSENT for p in pages):
            child.pmds[r] = TABLE
        else:
            child.pmds[r] = UNKNOWN

