"""Shared pieces of the model's transitions: results, and what happens to pages.

Faults (SIGBUS past a shmem object's end, copy-on-write of a memfd's page in a
private mapping), population (`populate_vma_page_range`), fault-around and
unmapping (of a range, or of a file's offsets from every mapping) are used by
several calls; each call family lives in its own module (`calls.py`, `madvise.py`,
`mremap.py`, `mlockall.py`) and builds on these. Whether a shmem page is
mapped exclusively (pagemap's X bit) is decided in one place for all of them,
`mark_mapped_twice`, which `calls.step` runs after every call.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.model import pmd, vmas
from fuzzer.model.state import (
    ABSENT,
    ANON,
    ANON_LARGE,
    ANON_LAZY,
    GUARD,
    LARGE,
    LAZY,
    PMD_ORDER,
    SHARED_ANON,
    SHMEM,
    SHMEM_TWICE,
    ZERO,
    Attrs,
    Page,
    State,
)
from fuzzer.model.vmas import vma_of
from fuzzer.prog.arena import PMD_PAGES
from fuzzer.prog.program import ARENA_BASE, ARENA_PAGES, page_up
from fuzzer.prog.syscalls import (
    PAGE,
    PROT_EXEC,
    PROT_WRITE,
    U64,
)

TASK_SIZE = (1 << 47) - PAGE
OUTSIDE = -(1 << 70)  # mmap result: "an address the kernel chose, outside the arena"
NEW_PID = -(1 << 71)  # fork result: "the child's pid", which only the kernel knows
FAULT_AROUND_PAGES = 16
BUS_ADRERR = 2  # si_code of the SIGBUS a fault past the end of a file raises


class Unsupported(ValueError):
    """A call whose semantics this model does not cover yet (never generated)."""


@dataclass(frozen=True, slots=True)
class Prediction:
    ret: int | None = None  # value, or -errno; None for a touch
    signal: tuple[int, int] | None = None  # (signo, si_code) raised by a touch

    # Spelled out as state.Attrs's are (one Prediction a step; tests/test_attrs_copies.py).
    def __init__(self, ret: int | None = None, signal: tuple[int, int] | None = None) -> None:
        object.__setattr__(self, "ret", ret)
        object.__setattr__(self, "signal", signal)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Prediction):
            return NotImplemented
        return self.ret == other.ret and self.signal == other.signal

    def __hash__(self) -> int:
        return hash((self.ret, self.signal))


def ok(value: int = 0) -> Prediction:
    return Prediction(ret=value)


def err(errno: int) -> Prediction:
    return Prediction(ret=-errno)


# ------------------------------------------------------------ page helpers


def wraps(addr: int, length: int) -> bool:
    """Whether [addr, addr+length) wraps past 2**64 at the arena's real address."""
    return ARENA_BASE + addr + length > U64


def checked_length(addr: int, length: int) -> int | None:
    """The page-rounded length of the range madvise and mseal take, or None when it is
    EINVAL: an unaligned start, a length that rounds from "small negative" to zero, or
    a range that wraps."""
    rounded = page_up(length) & U64
    if addr % PAGE or (length and not rounded) or wraps(addr, rounded):
        return None
    return rounded


def arena_pages(start: int, length: int) -> range:
    """Arena page indexes of [start, start+length), both page aligned."""
    return range(start // PAGE, min((start + length) // PAGE, ARENA_PAGES))


def fault(state: State, idx: int, write: bool) -> bool:
    """A fault at page idx that the VMA permits (handle_mm_fault); False on SIGBUS.

    A shmem offset at or past the object's end is SIGBUS (shmem_get_folio_gfp
    with SGP_CACHE): a read fault first maps what fault-around finds
    (do_read_fault), a write maps nothing. In a private file mapping (FP) a read
    maps the page-cache page like a shared one; a write copies it to a private
    anonymous page: do_cow_fault if nothing is mapped (shmem_fault allocates the
    page in the cache first), do_wp_page over the read-only page-cache PTE.
    """
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    if not a.obj:
        if state.pmds and not a.shared:  # the huge arena: a PMD first (pmd.py, §22)
            huge = pmd.fault(state, idx, write)
            if huge is None:
                raise Unsupported("a fault in a 2 MiB region whose page table a zap may "
                                  "have freed (CONFIG_PT_RECLAIM)")
            if huge:
                return True
        if write and page.state == ANON_LARGE and state.pmds and pmd.shared_write(state, idx):
            state.pages[idx] = Page(a, ANON)  # the PMD splits, the page is copied (§22)
        elif write and page.state == ABSENT and a.hg and state.features.mthp_orders:
            anon_folio(state, idx)
        elif write and page.state != ANON_LARGE:
            # a lazily freed page (`Al`) is dirty again: plain `A`; a zero page or a
            # frame fork shared (`aN`, `aN+`) is copied to one new page (wp_page_copy)
            state.pages[idx] = Page(a, ANON)
        elif page.state == ABSENT:
            state.pages[idx] = Page(a, ZERO)  # do_anonymous_page maps the zero page
        return True
    if page.state == ANON or (page.state != ABSENT and not (write and not a.shared)):
        if write and a.shared:
            state.shmem_dirty.add((a.obj, a.pgoff))  # the CPU sets the PTE's dirty bit
        return True  # the PTE is there: no fault is taken, so no fault-around either
    if page.state != ABSENT:
        state.pages[idx] = Page(a, ANON)  # do_wp_page: a private copy of the cached page
        return True
    cached = state.shmem.setdefault(a.obj, set())
    disk = state.disk.get(a.obj)
    if disk is not None and a.pgoff < state.shmem_size[a.obj]:
        # filemap_fault reads the page in (and ahead, on a miss) with the fault lock
        # dropped (maybe_unlock_mmap_for_io) and returns VM_FAULT_RETRY: the retried fault
        # finds it cached and uptodate, and a read fault's fault-around maps all it
        # finds (§21)
        if a.pgoff not in cached:
            read_ahead(state, idx, a, cached)
        disk.unread.discard(a.pgoff)
    if not write:
        fault_around(state, idx)
    elif not a.shared:
        # do_cow_fault prepares the anon_vma before it asks the file for the page,
        # so even a write past the end leaves the VMA with one.
        vmas.anon_vma_at(state, idx)
    if a.pgoff >= state.shmem_size[a.obj]:
        return False
    cached.add(a.pgoff)  # shmem_fault allocates a hole
    if write and a.shared:
        state.shmem_dirty.add((a.obj, a.pgoff))  # do_shared_fault: fault_dirty_shared_page
    # The page as it is now: fault-around and the anon_vma asked for the VMA's bounds, and
    # bringing those up to date (vmas.track) may have given the page a merged neighbour's
    # VM_STICKY (`gu`) meanwhile.
    now = state.pages[idx]
    assert now is not None
    state.pages[idx] = Page(now.attrs, ANON if write and not a.shared else SHMEM)
    return True


MMAP_LOTSAMISS = 100  # mm/filemap.c: more misses than this and mmap faults stop reading ahead


def read_ahead(state: State, idx: int, a: Attrs, cached: set[int]) -> None:
    """filemap_fault on page idx, whose offset a tmpfile does not cache (§21):
    do_sync_mmap_readahead, in 6.18's order of cases. (The caller adds the page itself.)

    - VM_HUGEPAGE: a PMD-aligned window read into PMD-order folios, which fault-around
      and finish_fault then map whole: refused (the folios' sizes are not kept).
    - MADV_RANDOM: no readahead; filemap_read_folio of the page alone (not in a VM_EXEC
      VMA, whose case below "is already intended for random access").
    - MADV_SEQUENTIAL: page_cache_sync_ra from the page to the end of the file.
    - Else the miss counts in the open file's mmap_miss (past MMAP_LOTSAMISS no
      readahead is done: refused), and
      - VM_EXEC: from the page to the VMA's end (async_size 0; exec_folio_order is 0
        on x86), where the kernel has that case (6.18+: `exec_readahead`; before,
        VM_EXEC is read like any VMA);
      - otherwise read-around: `ra_pages` pages from `pgoff - ra_pages / 2` (clipped at
        0), which covers the file here: the whole file.

    Holes are zero-filled at once (ext4_mpage_readpages), into order-0 folios. A file
    larger than half the window is refused: read-around would not reach its start, and
    its PG_readahead marker (at start + ra_pages * 3/4; ra_pages/2 for SEQUENTIAL from
    offset 0) would fall inside it, a page fault-around skips (next_uptodate_folio)."""
    end = state.shmem_size[a.obj]
    if a.hg:
        raise Unsupported("a page-cache miss of a tmpfile in a VM_HUGEPAGE VMA: readahead "
                          "into PMD-order folios, which fault-around maps whole")
    if end > state.features.disk_ra_pages // 2:
        raise Unsupported("a page-cache miss of a tmpfile larger than half the readahead "
                          "window")
    exec_ = bool(a.prot & PROT_EXEC) and state.features.exec_readahead
    if a.rr and not exec_:  # "VM_EXEC case below is already intended for random access"
        return
    if a.sr:
        cached.update(range(a.pgoff, end))
        return
    disk = state.disk[a.obj]
    if disk.misses >= MMAP_LOTSAMISS:
        raise Unsupported("a tmpfile with more page-cache misses than MMAP_LOTSAMISS: "
                          "the kernel may stop reading ahead")
    disk.misses += 1
    if exec_:
        vma = vma_of(state, idx)
        cached.update(range(a.pgoff, min(end, a.pgoff + vma.stop - idx)))
        return
    cached.update(range(end))


def anon_folio(state: State, idx: int) -> None:
    """do_anonymous_page -> alloc_anon_folio (mm/memory.c), for a write fault on a none
    PTE of a VM_HUGEPAGE private anonymous VMA (docs/SEMANTICS.md §19).

    thp_vma_allowable_orders gives the enabled orders below PMD_ORDER (the probe's
    `mthp_orders`; the executor's PR_THP_DISABLE_EXCEPT_ADVISED leaves them to
    VM_HUGEPAGE VMAs, and VM_NOHUGEPAGE clears VM_HUGEPAGE), thp_vma_suitable_orders
    keeps those whose naturally aligned block lies inside the VMA (no pgoff check for
    anonymous VMAs), and the highest of them whose PTEs are all none (pte_range_none:
    a present page, the zero page or a guard marker is not none) is allocated and
    mapped whole (set_ptes). None left: one page. A failed allocation falls back to the
    next order silently (anon_fault_fallback in sysfs, which check/program.py watches).
    """
    vma = vmas.vma_of(state, idx)
    for order in state.features.mthp_orders_desc():
        if order >= PMD_ORDER:
            continue  # thp_vma_allowable_orders(..., BIT(PMD_ORDER) - 1): the PMD is pmd.py's
        size = 1 << order
        start = idx - idx % size
        if start < vma.start or start + size > vma.stop:
            continue
        block = range(start, start + size)
        if all(_state_of(state, j) == ABSENT for j in block):
            for j in block:
                p = state.pages[j]
                assert p is not None
                state.pages[j] = Page(p.attrs, ANON_LARGE)
            state.large_folios += 1
            return
    page = state.pages[idx]
    assert page is not None
    state.pages[idx] = Page(page.attrs, ANON)


def _state_of(state: State, idx: int) -> str:
    page = state.pages[idx]
    assert page is not None  # inside the page's VMA
    return page.state


def fault_around(state: State, idx: int) -> None:
    """do_fault_around: map the pages the object caches in a window of the faulting VMA.

    The window is 16 pages (fault_around_bytes) from the 64 KiB-aligned start, or
    from the VMA's start if that comes later, clipped to the VMA's end and to the
    page table's (PTRS_PER_PTE: the 64-page arena lies in one page table, the huge
    arena's 2 MiB regions each in one of their own). filemap_map_pages maps only cached
    pages, which all lie before the object's end, and skips PTEs already present.
    """
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    vma = vma_of(state, idx)
    start = max(idx - idx % FAULT_AROUND_PAGES, vma.start)
    cached = state.shmem.get(a.obj, set())
    disk = state.disk.get(a.obj)
    unread = disk.unread if disk is not None else set()  # next_uptodate_folio skips them
    table_end = (idx // PMD_PAGES + 1) * PMD_PAGES  # the arena's base is 2 MiB-aligned
    for j in range(start, min(start + FAULT_AROUND_PAGES, vma.stop, table_end)):
        other = state.pages[j]
        assert other is not None and other.attrs.obj == a.obj
        if other.state == ABSENT and other.attrs.pgoff in cached and \
                other.attrs.pgoff not in unread:
            state.pages[j] = Page(other.attrs, SHMEM)


def populate(state: State, pages: range, ignore_errors: bool) -> bool:
    """__mm_populate: populate_vma_page_range over pages in order; False if it stopped
    on an error.

    Lock-on-fault pages are skipped. A PROT_NONE page fails with EFAULT, as does an
    execute-only-pkey page (arch_vma_access_permitted) and a shmem page past the
    object's end (SIGBUS inside GUP): with
    ignore_errors the walk goes on at the next VMA, otherwise it stops there.
    (Page by page is the same: the rest of such a VMA fails the same way.)
    """
    skip_to = 0
    for idx in pages:
        page = state.pages[idx]
        if page is None or idx < skip_to:
            continue  # __mm_populate only walks VMAs that exist
        a = page.attrs
        if a.lf:
            continue
        if not a.populatable:
            if ignore_errors:
                continue
            return False
        if page.state == GUARD:  # GUP faults on the marker: EFAULT (§15)
            if not ignore_errors:
                return False
            skip_to = vma_of(state, idx).stop  # the rest of this VMA is not populated
            continue
        # Private writable VMAs take write faults (break COW, FP included); the rest
    # read faults.
        if not fault(state, idx, write=bool(a.prot & PROT_WRITE) and not a.shared) \
                and not ignore_errors:
            return False
    return True


def unmap(state: State, pages: range) -> None:
    for idx in pages:
        state.pages[idx] = None
    state.drop_unmapped_objects()


def unmap_file_pages(state: State, obj: int, offsets: set[int], even_cows: bool) -> None:
    """unmap_mapping_range: the object's pages at these offsets leave every mapping of
    it, shared or private, in the arena and outside. Private copies (`A` in an FP
    mapping) go only with even_cows (truncation does that, a hole punch does not)."""
    for proc in state.processes():  # the object is one for every process
        for i, p in enumerate(proc.pages):
            if p is None or p.attrs.obj != obj or p.attrs.pgoff not in offsets:
                continue
            if p.state in (SHMEM, SHMEM_TWICE) or (even_cows and p.state[0] in "Aa"):
                proc.pages[i] = Page(p.attrs, ABSENT)
        for v in proc.outside_shmem_vmas:
            if v.obj == obj:
                v.mapped -= offsets
                if even_cows:
                    v.copies -= offsets


def count_mappings(states: list[State]) -> tuple[dict[str, int], dict[tuple[int, int], int]]:
    """How often each shared anonymous frame (`aN`) and each page cache page (object,
    offset) is mapped over these processes: in their arenas, and once for every VMA
    outside the arena that maps it (mremap moved it there, or an mmap went there).
    (Plain dicts, not Counters: this runs after every call, and a Counter's
    construction and update are interpreted Python.)"""
    frames: dict[str, int] = {}
    cached: dict[tuple[int, int], int] = {}
    for s in states:
        for p in s.pages:
            if p is None:
                continue
            if p.state[0] == SHARED_ANON:
                frames[p.state] = frames.get(p.state, 0) + 1
            elif p.state in (SHMEM, SHMEM_TWICE):
                key = (p.attrs.obj, p.attrs.pgoff)
                cached[key] = cached.get(key, 0) + 1
        for frame, _ in s.outside_frames:
            frames[frame] = frames.get(frame, 0) + 1
        for v in s.outside_shmem_vmas:
            for pg in v.mapped:
                key = (v.obj, pg)
                cached[key] = cached.get(key, 0) + 1
    return frames, cached


def locked_cache_pages(states: list[State]) -> set[tuple[int, int]]:
    """The page-cache pages (object, offset) a locked arena mapping of these processes
    maps."""
    return {(p.attrs.obj, p.attrs.pgoff) for s in states for p in s.pages
            if p is not None and p.attrs.lo and p.state in (SHMEM, SHMEM_TWICE)}


def mark_mapped_twice(state: State, held: set[tuple[int, int]] | None = None) -> None:
    """pagemap's X bit, after every call, in every process of the program: a page
    cache page mapped at two places (two arena pages, another process, or a VMA
    that mremap moved outside the arena) is not exclusive (`folio_maybe_mapped_shared`):
    `f`, otherwise `F`; a frame fork left shared (`aN`) that only one mapping is
    left of is exclusive again: `A` (`Al` from a lazy frame, `aNl`).

    It also keeps `State.lock_shared`: the page-cache pages two locked arena mappings map
    now join it, and so do those a locked mapping maps now that one mapped before a call
    that unmaps and maps in one go, or that an exit before the call munlocked (`held`:
    for mmap with MAP_FIXED and mremap, `locked_cache_pages` before it; after an exit,
    world.py's `exit_munlocked`); those no locked arena mapping maps leave it."""
    states = state.processes()
    frames, cached = count_mappings(states)
    locked: dict[tuple[int, int], int] = {}
    for s in states:
        for i, p in enumerate(s.pages):
            if p is None:
                continue
            letter = p.state
            if p.attrs.lo and letter in (SHMEM, SHMEM_TWICE):
                key = (p.attrs.obj, p.attrs.pgoff)
                locked[key] = locked.get(key, 0) + 1
            if letter[0] == SHARED_ANON and frames.get(letter, 0) == 1:
                # pagemap's X bit is per page (folio_precise_page_mapcount == 1 with
                # CONFIG_PAGE_MAPCOUNT), also for a page of a large folio (§19)
                last = letter[-1]
                letter = ANON_LAZY if last == LAZY else ANON_LARGE if last == LARGE else ANON
            elif letter in (SHMEM, SHMEM_TWICE):
                letter = SHMEM_TWICE if cached.get((p.attrs.obj, p.attrs.pgoff), 0) > 1 else SHMEM
            if letter != p.state:
                s.pages[i] = Page(p.attrs, letter)
                if s.vmas_seen[i] is p:  # a new letter is no change of VMA
                    s.vmas_seen[i] = s.pages[i]
    shared = state.lock_shared
    if shared or locked:
        shared.intersection_update(locked)
        shared.update(key for key, n in locked.items()
                      if n > 1 or (held is not None and key in held))


def mapcounts(state: State) -> list[int]:
    """How many times each arena page's physical page is mapped, over every process
    (0 where nothing is mapped, and for the zero page, which smaps never counts):
    what divides a page in Pss (`smaps_account`)."""
    frames, cached = count_mappings(state.processes())
    out = []
    for p in state.pages:
        if p is None or p.state in (ABSENT, ZERO, GUARD):
            out.append(0)
        elif p.state[0] == SHARED_ANON:
            out.append(frames.get(p.state, 0))
        elif p.state in (SHMEM, SHMEM_TWICE):
            out.append(cached.get((p.attrs.obj, p.attrs.pgoff), 0))
        else:
            out.append(1)
    return out


