"""madvise: docs/SEMANTICS.md §7, following mm/madvise.c (6.18).

`do_madvise` validates the arguments (`madvise_should_skip`), then either
faults the range in (`madvise_populate`, for the POPULATE advices) or walks
the VMAs (`madvise_walk_vmas`), calling `madvise_vma_behavior` on each mapped
part: an error from one VMA ends the walk at once, a hole only makes the
walk return ENOMEM after it has visited every mapped part. The model walks
page by page; every page carries its VMA's attributes, so the first page of
a VMA that fails is where the kernel stops too.

MADV_PAGEOUT reclaims what it can without swap (§16). Advice that only sets
VMA flags (dc, wf, hg, nh, rr, sr, dd, mg) changes
nothing the oracle compares but dc and wf; the flags still split and merge
VMAs (madvise_update_vma), which `vmas.track` follows like any other change,
and that decides where a later fault-around stops. Advice the model does not
predict raises Unsupported (`UNSUPPORTED_ADVICE` lists the values, so a
generator can leave them out).
"""

from __future__ import annotations

from collections.abc import Callable

from fuzzer.model import pmd, vmas
from fuzzer.model.mseal import discard_refused
from fuzzer.model.pages import (
    Prediction,
    Unsupported,
    arena_pages,
    checked_length,
    err,
    fault,
    ok,
    unmap_file_pages,
)
from fuzzer.model.state import (
    ABSENT,
    ANON,
    ANON_LARGE,
    ANON_LAZY,
    GUARD,
    LARGE,
    LAZY,
    SHARED_ANON,
    SHMEM,
    Page,
    State,
)
from fuzzer.prog.arena import PMD_PAGES
from fuzzer.prog.syscalls import (
    EACCES,
    EFAULT,
    EINVAL,
    ENOMEM,
    EPERM,
    MADV_COLD,
    MADV_COLLAPSE,
    MADV_DODUMP,
    MADV_DOFORK,
    MADV_DONTDUMP,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_DONTNEED_LOCKED,
    MADV_FREE,
    MADV_GUARD_INSTALL,
    MADV_GUARD_REMOVE,
    MADV_HUGEPAGE,
    MADV_KEEPONFORK,
    MADV_MERGEABLE,
    MADV_NOHUGEPAGE,
    MADV_NORMAL,
    MADV_PAGEOUT,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
    MADV_RANDOM,
    MADV_REMOVE,
    MADV_SEQUENTIAL,
    MADV_UNMERGEABLE,
    MADV_WILLNEED,
    MADV_WIPEONFORK,
    PROT_READ,
    PROT_WRITE,
)

MODELLED = True

# Valid advice (madvise_behavior_valid) that the program format does not name.
# They are here, not in the syscall table, because only this module needs them.
MADV_HWPOISON, MADV_SOFT_OFFLINE = 100, 101
HPAGE_PMD_PAGES = PMD_PAGES  # a PMD-mapped huge page on x86-64: 2 MiB (the huge arena holds 2)

# Advice values whose effect the model does not predict, and why.
UNSUPPORTED_ADVICE: dict[int, str] = {
    MADV_HWPOISON: "MADV_HWPOISON (memory-failure injection)",
    MADV_SOFT_OFFLINE: "MADV_SOFT_OFFLINE (memory-failure injection)",
}

# madvise_behavior_valid with CONFIG_KSM and CONFIG_TRANSPARENT_HUGEPAGE, as the
# test kernel has them, on the newest kernel (see _valid_advice); every other
# value is EINVAL.
VALID_ADVICE = frozenset({
    MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED, MADV_FREE,
    MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE,
    MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD,
    MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_DONTNEED_LOCKED,
    MADV_GUARD_INSTALL, MADV_GUARD_REMOVE, MADV_COLLAPSE,
})

def _valid_advice(state: State) -> frozenset[int]:
    """VALID_ADVICE on the kernel under test: older kernels lack the newer values."""
    missing: set[int] = set()
    if not state.features.madv_populate:
        missing |= {MADV_POPULATE_READ, MADV_POPULATE_WRITE}  # 5.14+
    if not state.features.madv_dontneed_locked:
        missing.add(MADV_DONTNEED_LOCKED)  # 5.18+
    if not state.features.guard_regions:
        missing |= {MADV_GUARD_INSTALL, MADV_GUARD_REMOVE}  # 6.13+
    if not state.features.thp:
        missing |= {MADV_HUGEPAGE, MADV_NOHUGEPAGE}  # without CONFIG_TRANSPARENT_HUGEPAGE
    if not state.features.madv_collapse:
        missing.add(MADV_COLLAPSE)  # 6.1+, and only with CONFIG_TRANSPARENT_HUGEPAGE
    return VALID_ADVICE - missing


def madvise(state: State, addr: int, length: int, advice: int) -> Prediction:
    # SYSCALL_DEFINE3(madvise, ..., int, behavior): the upper half of the register is dropped.
    advice &= 0xFFFF_FFFF
    if advice in UNSUPPORTED_ADVICE:
        raise Unsupported(UNSUPPORTED_ADVICE[advice])
    # madvise_should_skip -> is_valid_madvise
    if advice not in _valid_advice(state):
        return err(EINVAL)
    rounded = checked_length(addr, length)
    if rounded is None:
        return err(EINVAL)
    if rounded == 0:
        return ok()
    pages = arena_pages(addr, rounded)
    # madvise_do_behavior
    if advice in (MADV_POPULATE_READ, MADV_POPULATE_WRITE):
        return _populate(state, pages, write=advice == MADV_POPULATE_WRITE)
    if advice == MADV_COLLAPSE and state.pmds:
        return _collapse_huge(state, pages)
    behavior = _PER_VMA[advice]
    prediction = _walk(state, pages, _sealed(behavior) if advice in DISCARD else behavior)
    if advice in (MADV_DONTNEED, MADV_DONTNEED_LOCKED):
        pmd.zapped(state, pages)
    return prediction


# ------------------------------------------------------------- the walks


def _walk(state: State, pages: range, behavior: Callable[[State, int], int]) -> Prediction:
    """madvise_walk_vmas: every mapped part in order, stopping at the first error."""
    hole = False
    for idx in pages:
        if state.pages[idx] is None:
            hole = True  # unmapped_error: noted, and the walk goes on
            continue
        error = behavior(state, idx)
        if error:
            return err(error)
    return err(ENOMEM) if hole else ok()


# is_discard: the advice a sealed private anonymous VMA may refuse (docs/SEMANTICS.md §14).
DISCARD = frozenset({MADV_FREE, MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_REMOVE,
                     MADV_DONTFORK, MADV_WIPEONFORK, MADV_GUARD_INSTALL})


def _sealed(behavior: Callable[[State, int], int]) -> Callable[[State, int], int]:
    """madvise_vma_behavior: can_madvise_modify comes before the advice's own checks."""
    def checked(state: State, idx: int) -> int:
        return EPERM if discard_refused(state, idx) else behavior(state, idx)
    return checked


def _populate(state: State, pages: range, write: bool) -> Prediction:
    """madvise_populate -> faultin_page_range: GUP with FOLL_MADV_POPULATE, no FOLL_FORCE.

    Unlike the walk, a hole stops it (vma_lookup fails: ENOMEM), and so does a
    VMA whose protection refuses the access (check_vma_flags: EINVAL). Reads
    need VM_READ itself: PROT_WRITE-only and PROT_EXEC-only VMAs, readable by
    a touch on x86, are EINVAL. Lock-on-fault is not consulted (that is
    populate_vma_page_range's rule for mlock), so `lf` pages are faulted too.
    """
    need = PROT_WRITE if write else PROT_READ
    hole = False
    for idx in pages:
        page = state.pages[idx]
        if page is None:
            if state.features.madv_populate_stops_at_hole:
                return err(ENOMEM)
            hole = True  # before about 6.9 it ran in madvise_walk_vmas: noted, and on it goes
            continue
        if not page.attrs.prot & need:
            return err(EINVAL)
        if page.state == GUARD:
            return err(EFAULT)  # the fault on the marker is VM_FAULT_SIGSEGV (§15)
        # follow_page_mask finds pages already mapped well enough; only the rest fault
        # (a read fault on shmem maps cached neighbours around it). A write needs a
        # private page to be anonymous: a zero page or a memfd's cached page breaks COW.
        # A lazily freed page (`Al`) is found, and FOLL_TOUCH|FOLL_WRITE marks its clean
        # folio dirty: `fault` makes it a plain `A` (§16).
        absent = page.state == ABSENT
        if write and page.attrs.shared and not absent:
            # follow_page_pte with FOLL_TOUCH|FOLL_WRITE dirties the folio it finds
            state.shmem_dirty.add((page.attrs.obj, page.attrs.pgoff))
        cow = write and not page.attrs.shared and (
            page.state not in (ANON, ANON_LARGE)
            or (page.state == ANON_LARGE and bool(state.pmds) and pmd.shared_write(state, idx)))
        if (absent or cow) and not fault(state, idx, write):
            return err(EFAULT)  # SIGBUS past the shmem object's end
    return err(ENOMEM) if hole else ok()


# ------------------------------------------- madvise_vma_behavior, per VMA
# Each returns 0 or an errno for the page's VMA, checking before it changes
# anything, as the kernel checks a VMA before it touches it.


def _set(state: State, idx: int, **changes: bool) -> None:
    page = state.pages[idx]
    assert page is not None
    state.pages[idx] = Page(page.attrs.with_flags(changes), page.state)


def _zap(state: State, idx: int) -> None:
    """zap_page_range_single_batched: the PTE goes; shmem keeps the page cached. A guard
    marker stays (zap_details without ZAP_FLAG_DROP_MARKER, §15)."""
    page = state.pages[idx]
    assert page is not None
    if page.state != GUARD:
        state.pages[idx] = Page(page.attrs, ABSENT)


def _willneed(state: State, idx: int) -> int:
    """Without swap entries there is nothing to read in (anon and shmem). A tmpfile's
    range is read into its cache (madvise_willneed -> vfs_fadvise(POSIX_FADV_WILLNEED)
    -> force_page_cache_ra, up to the end of the file; holes are zero-filled at once):
    mapped by no one, but a later fault-around maps it (§21)."""
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    if a.obj in state.disk and a.pgoff < state.shmem_size[a.obj]:
        state.shmem.setdefault(a.obj, set()).add(a.pgoff)
    return 0


def _flag_setter(**changes: bool) -> Callable[[State, int], int]:
    """Advice that only sets and clears VMA flags, and never fails on our VMAs."""
    def behavior(state: State, idx: int) -> int:
        _set(state, idx, **changes)
        return 0
    return behavior


def _collapse(state: State, idx: int) -> int:
    """madvise_collapse: first thp_vma_allowable_order(PMD_ORDER) (6.1: hugepage_vma_check).
    Outside a fault it wants an aligned 2 MiB range at the VMA's end
    (thp_vma_suitable_order at vm_end - HPAGE_PMD_SIZE), so a VMA smaller than 2 MiB, as
    every VMA of the 64-page arena is (ARENA_PAGES < HPAGE_PMD_PAGES:
    tests/test_model_madvise.py), is EINVAL before anything is collapsed or drained
    (docs/SEMANTICS.md §7). The huge arena's VMAs go to `_collapse_huge`."""
    return EINVAL


def _collapse_huge(state: State, pages: range) -> Prediction:
    """madvise_collapse in the huge arena (§22), VMA by VMA as madvise_walk_vmas goes:
    thp_vma_allowable_order(TVA_FORCED_COLLAPSE) wants a private anonymous VMA that
    holds an aligned 2 MiB region whole (thp_vma_suitable_order at vm_end - 2 MiB), not
    VM_NOHUGEPAGE, and THP not disabled for the process (vma_thp_disabled: the forced
    collapse counts as advice under PR_THP_DISABLE_EXCEPT_ADVISED, so VM_HUGEPAGE is not
    needed), with an anon_vma ("THPeligible ... even though anon_vma is not initialized
    yet" holds for smaps and faults only); else EINVAL. A range that holds no aligned
    region whole collapses nothing and succeeds. Then each region it holds is scanned: one mapped
    by a PMD already counts as done (SCAN_PMD_MAPPED); one without a page table is
    SCAN_PMD_NULL, which lets the others go on and makes the call EINVAL. Collapsing a
    region of PTEs, and a shmem VMA large enough to collapse, are not modelled."""
    hole = False
    idx = pages.start
    while idx < pages.stop:
        page = state.pages[idx]
        if page is None:
            hole = True
            idx += 1
            continue
        vma = vmas.vma_of(state, idx)
        part = range(idx, min(pages.stop, vma.stop))
        whole = [r for r in range(pmd.REGIONS)
                 if vma.start <= r * HPAGE_PMD_PAGES and (r + 1) * HPAGE_PMD_PAGES <= vma.stop]
        a = page.attrs
        if whole and (a.obj or a.shared):
            raise Unsupported("MADV_COLLAPSE of a shmem VMA that holds a 2 MiB region")
        if not whole or a.nh or not state.features.thp_except_advised or \
                not vmas.slot(state, idx)[1]:
            return err(EINVAL)
        done = True
        for r in whole:
            if not (part.start <= r * HPAGE_PMD_PAGES and (r + 1) * HPAGE_PMD_PAGES <= part.stop):
                continue
            kind = state.pmds[r]
            if kind == pmd.NONE:
                done = False
            elif kind != pmd.HUGE:
                raise Unsupported("MADV_COLLAPSE of a 2 MiB region of PTEs (or of the huge "
                                  "zero page): the collapse is not modelled")
        if not done:
            return err(EINVAL)
        idx = part.stop
    return err(ENOMEM) if hole else ok()


def _ksm(mergeable: bool) -> Callable[[State, int], int]:
    """ksm_madvise: VM_MERGEABLE on private anonymous VMAs only (vma_ksm_compatible);
    with KSM not running there are no KSM pages to unmerge."""
    def behavior(state: State, idx: int) -> int:
        page = state.pages[idx]
        assert page is not None
        if not page.attrs.shared:
            _set(state, idx, mg=mergeable)
        return 0
    return behavior


def _dontneed(state: State, idx: int) -> int:
    # madvise_dontneed_free_valid_vma: VM_LOCKED (lf included, it implies lo) is EINVAL
    page = state.pages[idx]
    assert page is not None
    if page.attrs.lo:
        return EINVAL
    _zap(state, idx)
    return 0


def _dontneed_locked(state: State, idx: int) -> int:
    _zap(state, idx)  # only VM_PFNMAP is forbidden; the VMA stays lo, VmLck unchanged
    return 0


def _free(state: State, idx: int) -> int:
    """madvise_dontneed_free_valid_vma (VM_LOCKED), then madvise_free_single_vma
    (!vma_is_anonymous: any shmem file, anonymous-shared or a memfd, shared or
    private). Lazily freed pages stay mapped until reclaim takes them (§16):
    madvise_free_pte_range cleans the PTE and, once lru_add_drain ran (madvise_pageout
    does first), folio_mark_lazyfree clears the folio's swap-backed flag. An exclusive
    page becomes `Al` (a PG_dirty folio mapped once is cleaned first). A VM_DROPPABLE
    folio is never swap-backed: nothing changes."""
    page = state.pages[idx]
    assert page is not None
    if page.attrs.lo or page.attrs.obj:
        return EINVAL
    letter = page.state
    _not_split(page, "MADV_FREE")
    if page.attrs.dp:
        return 0
    if letter == ANON:
        state.pages[idx] = Page(page.attrs, ANON_LAZY)
    elif letter[0] == SHARED_ANON and letter[-1] != LAZY:
        # A frame fork shared: skipped if PG_dirty (mapcount > 1), else lazy-free with
        # only this PTE cleaned; the other PTEs may be dirty. A lazy frame (`aNl`) has
        # every PTE clean already and stays as it is.
        for proc in state.processes():
            proc.lazy_untracked = True
    return 0


def _remove(state: State, idx: int) -> int:
    """madvise_remove: punch a hole in the shmem object behind the page."""
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    if a.lo:
        return EINVAL
    if not a.obj:
        return EINVAL  # no vm_file
    if not a.shared:
        return EACCES  # vma_is_shared_maywrite: a private (FP) mapping is not
    # A shared VMA of an anonymous object or of a memfd (opened O_RDWR) always has
    # VM_MAYWRITE, whatever its protection, so the EACCES check passes. The punch
    # (shmem_fallocate) unmaps the offset from every mapping of the object but
    # keeps private copies (unmap_mapping_range without even_cows), then drops it
    # from the cache.
    state.shmem.get(a.obj, set()).discard(a.pgoff)
    unmap_file_pages(state, a.obj, {a.pgoff}, even_cows=False)
    return 0


def _cold(state: State, idx: int) -> int:
    # can_madv_lru_vma: VM_LOCKED is EINVAL. Otherwise pages are only deactivated.
    page = state.pages[idx]
    assert page is not None
    if page.attrs.lo:
        return EINVAL
    _not_split(page, "MADV_COLD")
    return 0


def _not_split(page: Page, advice: str) -> None:
    """MADV_FREE, MADV_COLD and MADV_PAGEOUT split a large folio the range covers only in
    part (madvise_free_pte_range, madvise_cold_or_pageout_pte_range), PAGEOUT without
    swap even a whole one (shrink_folio_list splits it when add_to_swap fails), and a
    split maps the zero-filled pages of an anonymous folio to the shared zero page
    (__split_huge_page -> remap_page with RMP_USE_SHARED_ZEROPAGE), which depends on
    page contents the model does not keep (docs/SEMANTICS.md §19)."""
    if page.state[-1] == LARGE:
        raise Unsupported(f"{advice} over a large folio (mTHP): a split maps its zero-filled "
                          "pages to the zero page, by contents the model does not keep")


def _pageout(state: State, idx: int) -> int:
    """madvise_pageout (§16): can_madv_lru_vma refuses VM_LOCKED; then
    madvise_cold_or_pageout_pte_range isolates every present page that is mapped once
    (folio_maybe_mapped_shared: not the zero page, not `f`, not `aN`), and
    reclaim_pages -> shrink_folio_list without swap: an anonymous page stays (add_to_swap
    fails) unless VM_DROPPABLE (try_to_unmap_one discards it, dirty or not) or lazily
    freed and still clean (`Al`: try_to_unmap_one discards it; a lazy page written since
    is `A`, remapped and swap-backed again); a shmem page is unmapped, then kept if
    dirty (shmem_writeout redirties it) or dropped if clean."""
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    if a.lo:
        return EINVAL
    if not state.features.no_swap:
        raise Unsupported(PAGEOUT_WITH_SWAP)
    _not_split(page, "MADV_PAGEOUT")
    if page.state == SHMEM and a.obj in state.disk:
        raise Unsupported(PAGEOUT_DISK)
    if page.state == SHMEM:
        state.pages[idx] = Page(a, ABSENT)
        if (a.obj, a.pgoff) not in state.shmem_dirty:
            state.shmem.get(a.obj, set()).discard(a.pgoff)  # __remove_mapping frees it
    elif (page.state == ANON and a.dp) or page.state == ANON_LAZY:
        state.pages[idx] = Page(a, ABSENT)
    elif page.state == ANON and not a.obj and state.lazy_untracked:
        raise Unsupported(PAGEOUT_LAZY)
    return 0


PAGEOUT_WITH_SWAP = "MADV_PAGEOUT with swap: what reclaim writes out is not modelled"
PAGEOUT_DISK = ("MADV_PAGEOUT of a tmpfile page: whether reclaim drops it depends on "
                "writeback and on the page-cache folio's size, which the model does not keep")
PAGEOUT_LAZY = ("MADV_PAGEOUT after MADV_FREE met a page fork shared: whether its folio is "
                "lazily freed and clean in the process left with it is not kept")


def _not_droppable(behavior: Callable[[State, int], int]) -> Callable[[State, int], int]:
    """MADV_KEEPONFORK and MADV_DODUMP: EINVAL on a VM_DROPPABLE VMA (§17), which must
    keep VM_WIPEONFORK and VM_DONTDUMP."""
    def checked(state: State, idx: int) -> int:
        page = state.pages[idx]
        assert page is not None
        return EINVAL if page.attrs.dp else behavior(state, idx)
    return checked


def _wipeonfork(state: State, idx: int) -> int:
    page = state.pages[idx]
    assert page is not None
    if page.attrs.obj:
        return EINVAL  # only where vm_file is NULL and VM_SHARED is clear
    _set(state, idx, wf=True)
    return 0


def _guard_install(state: State, idx: int) -> int:
    """madvise_guard_install (§15): is_valid_guard_vma refuses VM_LOCKED, and before 6.15
    any VMA with a file (shmem, memfd: `Features.shmem_guards`); the whole VMA gets
    VM_MAYBE_GUARD (`gu`, so that fork copies its page tables, shmem pages included); a
    private one an anon_vma too; the page is zapped (a shmem page stays cached) and a
    marker installed."""
    page = state.pages[idx]
    assert page is not None
    if page.attrs.lo or (page.attrs.obj and not state.features.shmem_guards):
        return EINVAL
    vmas.anon_vma_at(state, idx)
    for j in vmas.vma_of(state, idx):
        other = state.pages[j]
        assert other is not None
        if not other.attrs.gu:
            state.pages[j] = Page(other.attrs.with_flags({"gu": True}), other.state)
    page = state.pages[idx]
    assert page is not None
    state.pages[idx] = Page(page.attrs, GUARD)
    return 0


def _guard_remove(state: State, idx: int) -> int:
    """madvise_guard_remove (§15): locked VMAs are allowed; the marker goes, no page comes."""
    page = state.pages[idx]
    assert page is not None
    if page.state == GUARD:
        state.pages[idx] = Page(page.attrs, ABSENT)
    return 0


_PER_VMA: dict[int, Callable[[State, int], int]] = {
    MADV_NORMAL: _flag_setter(rr=False, sr=False),
    MADV_RANDOM: _flag_setter(rr=True, sr=False),
    MADV_SEQUENTIAL: _flag_setter(rr=False, sr=True),
    MADV_WILLNEED: _willneed,
    MADV_DONTNEED: _dontneed,
    MADV_FREE: _free,
    MADV_REMOVE: _remove,
    MADV_DONTFORK: _flag_setter(dc=True),
    MADV_DOFORK: _flag_setter(dc=False),  # EINVAL only on VM_IO
    MADV_MERGEABLE: _ksm(mergeable=True),
    MADV_UNMERGEABLE: _ksm(mergeable=False),
    MADV_HUGEPAGE: _flag_setter(hg=True, nh=False),  # hugepage_madvise: no error on x86
    MADV_NOHUGEPAGE: _flag_setter(hg=False, nh=True),
    MADV_DONTDUMP: _flag_setter(dd=True),
    MADV_DODUMP: _not_droppable(_flag_setter(dd=False)),  # and EINVAL on VM_SPECIAL VMAs
    MADV_WIPEONFORK: _wipeonfork,
    MADV_KEEPONFORK: _not_droppable(_flag_setter(wf=False)),
    MADV_COLD: _cold,
    MADV_PAGEOUT: _pageout,
    MADV_DONTNEED_LOCKED: _dontneed_locked,
    MADV_GUARD_INSTALL: _guard_install,
    MADV_GUARD_REMOVE: _guard_remove,
    MADV_COLLAPSE: _collapse,
}
