"""mremap: docs/SEMANTICS.md §6, following mm/mremap.c of 6.18 (`do_mremap` and its helpers).

The checks run in the kernel's order: `check_mremap_params` (flags, alignment,
lengths, what FIXED and DONTUNMAP need), then `remap_move` for a pure FIXED
move (old_len == new_len, which may span several VMAs), else `check_prep_vma`
on the VMA at the old address followed by `mremap_to` (a new address is
implied) or `mremap_at` (no-op, shrink in place, grow in place or move).
Growing a VM_LOCKED VMA populates the new part once the call is done, and
without CAP_IPC_LOCK is held to RLIMIT_MEMLOCK (EAGAIN). Kernels without
`features.mremap_multi_vma_move` (before about 6.17) treat every move as one VMA's.

Which VMA holds the old address decides EFAULT and in-place growth: this
module reads the VMA picture of `vmas.py` and, since it moves VMAs itself,
updates that picture directly (splits, merges, the pgoff and anon_vma a moved
VMA keeps) and marks its changes as seen. A VMA moved outside the arena still
maps its shmem pages (`State.outside_shmem_vmas`, each VMA its own), which matters
for pagemap's X bit (`pages.mark_mapped_twice`) and for Pss (`pages.mapcounts`).
"""

from __future__ import annotations

from fuzzer.model import pmd, vmas
from fuzzer.model.mseal import unmap_refused
from fuzzer.model.pages import (
    FAULT_AROUND_PAGES,
    OUTSIDE,
    TASK_SIZE,
    Prediction,
    Unsupported,
    arena_pages,
    populate,
)
from fuzzer.model.state import (
    ABSENT,
    ANON,
    GUARD,
    SHARED_ANON,
    SHMEM,
    SHMEM_TWICE,
    Attrs,
    OutsideFile,
    Page,
    State,
)
from fuzzer.prog.program import ARENA_BASE, ARENA_PAGES, page_up
from fuzzer.prog.syscalls import (
    EAGAIN,
    EFAULT,
    EINVAL,
    ENOMEM,
    EPERM,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE,
    PROT_WRITE,
    U64,
)

MODELLED = True

MREMAP_ALL = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP
N = ARENA_PAGES


def mremap(state: State, old: int, old_len: int, new_len: int, flags: int, new: int) -> Prediction:
    """The result is an arena offset, OUTSIDE (an address the kernel chose) or -errno."""
    vmas.track(state)
    ret, grown = _do_mremap(state, old, old_len, new_len, flags, new)
    state.drop_unmapped_objects()
    state.vmas_seen = list(state.pages)
    if grown is not None:
        # mm_populate after the lock is dropped, errors ignored: a shmem page past the
        # object's end fails (SIGBUS inside GUP), which ends the VMA's population
        populate(state, grown, ignore_errors=True)
    return Prediction(ret=ret)


# ------------------------------------------------------------ the call


def _check_params(state: State, old: int, old_len: int, new_len: int, flags: int, new: int,
                  raw_lens: tuple[int, int]) -> int:
    """check_mremap_params (and, before about 6.17, the early VMA lookup): 0 or -errno.
    The lengths are page-aligned; `raw_lens` are as given."""
    implies_new = bool(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
    dontunmap = bool(flags & MREMAP_DONTUNMAP)
    if flags & ~MREMAP_ALL or old % PAGE or not new_len:
        return -EINVAL
    if not state.features.mremap_checks_first:
        # Before about 6.17 the syscall checked only its flags (DONTUNMAP's lengths as
        # given, not page-aligned), then looked the VMA up (EFAULT), and left the new
        # range to mremap_to().
        maymove = bool(flags & MREMAP_MAYMOVE)
        if (flags & MREMAP_FIXED and not maymove) or (
                dontunmap and (not maymove or raw_lens[0] != raw_lens[1])):
            return -EINVAL
        if vmas.vma_at(state, old // PAGE) is None:
            return -EFAULT
        if _page(state, old // PAGE).attrs.sl:
            return -EPERM  # do_mremap's can_modify_vma(), right after the lookup (6.12)
    if new_len > TASK_SIZE and (state.features.mremap_checks_first or implies_new):
        return -EINVAL
    if implies_new and (
        new % PAGE
        or not flags & MREMAP_MAYMOVE
        or (dontunmap and old_len != new_len)
        or _overlaps(old, old_len, new, new_len)
    ):
        return -EINVAL
    return 0


def _do_mremap(
    state: State, old: int, old_len: int, new_len: int, flags: int, new: int
) -> tuple[int, range | None]:
    """do_mremap: the result (arena offset, OUTSIDE or -errno) and the range to populate."""
    raw_lens = (old_len, new_len)
    old_len = page_up(old_len) & U64  # PAGE_ALIGN, which wraps to 0
    new_len = page_up(new_len) & U64
    error = _check_params(state, old, old_len, new_len, flags, new, raw_lens)
    if error:
        return error, None
    implies_new = bool(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
    dontunmap = bool(flags & MREMAP_DONTUNMAP)
    if flags & MREMAP_FIXED and old_len == new_len and state.features.mremap_multi_vma_move:
        return _remap_move(state, old, old_len, new, dontunmap), None
    # check_prep_vma
    vma = vmas.vma_at(state, old // PAGE)
    if vma is None:
        return -EFAULT, None
    if _page(state, old // PAGE).attrs.sl:
        return -EPERM, None  # check_prep_vma: a sealed VMA is not remapped at all (§14)
    # Before about 6.17, mremap_to() made its unmaps before vma_to_resize() checked the
    # source: the source's errors come after them.
    unmapped = bool(flags & MREMAP_FIXED) and not state.features.mremap_checks_first
    if unmapped:
        error = _unmap_first(state, old, old_len, new_len, new, flags)
        if error:
            return error, None
        vma = vmas.vma_at(state, old // PAGE)
        assert vma is not None  # _unmap_first: EFAULT otherwise
    head = _page(state, old // PAGE).attrs
    expand = new_len > old_len
    if expand or implies_new:
        if not old_len and not head.shared:
            return -EINVAL, None  # "duplicating" a private mapping
        # A shrink may unmap past the VMA's end; what is kept or moved may not.
        if min(old_len, new_len) > vma.stop * PAGE - old:
            return -EFAULT, None
        # mlock_future_ok: a locked VMA grows only within RLIMIT_MEMLOCK (or CAP_IPC_LOCK)
        delta = (new_len - old_len) // PAGE if expand else 0
        over = delta + state.locked_pages() > state.limit_pages()
        if head.lo and delta and not state.cap_ipc_lock and over:
            return -EAGAIN, None
        if new_len > TASK_SIZE:  # an old kernel (see above) without a target
            return -ENOMEM, None  # may_expand_vm(): more than RLIMIT_AS can hold
    if implies_new:
        ret = _mremap_to(state, old, old_len, new_len, new, flags, unmapped)
    else:
        ret = _mremap_at(state, vma, old, old_len, new_len, flags)
    if ret < 0 or not (expand and head.lo):
        return ret, None  # (OUTSIDE is negative too: nothing in the arena to populate)
    return ret, range((ret + old_len) // PAGE, (ret + new_len) // PAGE)


def _overlaps(old: int, old_len: int, new: int, new_len: int) -> bool:
    """vrm_overlaps, on the real (unsigned) addresses: a huge old_len wraps."""
    start_old, start_new = ARENA_BASE + old, ARENA_BASE + new
    end_old = (start_old + old_len) & U64
    return end_old > start_new and start_new + new_len > start_old


def _mremap_at(state: State, vma: range, old: int, old_len: int, new_len: int,
               flags: int) -> int:
    if new_len == old_len:
        return old  # no-op, even for a range that runs past the VMA
    if new_len < old_len:
        return _munmap(state, old + new_len, old_len - new_len) or old
    # expand_vma: in place only if the range ends the VMA and the space after it is free
    delta = (new_len - old_len) // PAGE
    if vma.stop * PAGE == old + old_len and _free(state, vma.stop, delta):
        _extend(state, vma, delta)
        return old
    if not flags & MREMAP_MAYMOVE:
        return -ENOMEM
    return _move_vma(state, old, old_len, new_len, OUTSIDE, dontunmap=False)


def _mremap_to(state: State, old: int, old_len: int, new_len: int, new: int, flags: int,
               unmapped: bool) -> int:
    """mremap_to(); `unmapped`: its unmaps were made already (_unmap_first)."""
    if not unmapped:
        error = _unmap_first(state, old, old_len, new_len, new, flags)
        if error:
            return error
    old_len = min(old_len, new_len)
    dest = new
    if not flags & MREMAP_FIXED and not _free(state, new // PAGE, new_len // PAGE):
        dest = OUTSIDE  # DONTUNMAP alone: new is a hint, used only if the range is free
    return _move_vma(state, old, old_len, new_len, dest, bool(flags & MREMAP_DONTUNMAP))


def _unmap_first(state: State, old: int, old_len: int, new_len: int, new: int,
                 flags: int) -> int:
    """The unmaps mremap_to() starts with, 0 or -errno (what was unmapped stays so): a
    FIXED target's, which a seal refuses (§14), then a shrunk source's tail. The target
    may be the old VMA itself (old_len 0, or a huge old_len that wraps past the target):
    since 6.17 mremap_to() looks the source up again right after the target's unmap
    (EFAULT); before, vma_to_resize() did, after the tail's unmap, whose own checks (EINVAL
    for a length past TASK_SIZE) come first."""
    if flags & MREMAP_FIXED:
        if unmap_refused(state, arena_pages(new, new_len)):
            return -EPERM
        _clear(state, arena_pages(new, new_len))
        if state.features.mremap_checks_first and vmas.vma_at(state, old // PAGE) is None:
            return -EFAULT
    if new_len < old_len:
        error = _munmap(state, old + new_len, old_len - new_len)
        if error:
            return error
    if flags & MREMAP_FIXED and vmas.vma_at(state, old // PAGE) is None:
        return -EFAULT
    return 0


def _remap_move(state: State, old: int, length: int, new: int, dontunmap: bool) -> int:
    """remap_move: move every VMA in the range, keeping the gaps between them."""
    start, end = old // PAGE, (old + length) // PAGE
    res, target, last_end, pos = -EFAULT, new // PAGE, 0, start
    seen = False
    while (vma := vmas.next_vma(state, pos, end)) is not None:
        if not seen and start < vma.start:
            return -EFAULT  # no gap permitted at the start of the range
        dest = target + (vma.start - last_end if seen else 0)
        last_end = vma.stop
        first = max(vma.start, start)
        count = min(end, vma.stop) - first
        # Per VMA, check_prep_vma refuses a sealed one (those before it stay moved),
        # and mremap_to unmaps its target, which must not be sealed either (§14).
        if _page(state, first).attrs.sl or unmap_refused(state, range(dest, dest + count)):
            return -EPERM
        _clear(state, range(dest, dest + count))
        _move_vma(state, first * PAGE, count * PAGE, count * PAGE, dest * PAGE, dontunmap)
        res = res if seen else dest * PAGE
        seen, target, pos = True, dest + count, first + count
    return res


def _munmap(state: State, addr: int, length: int) -> int:
    """do_vmi_munmap of a shrunk tail: 0, -EINVAL, or -EPERM for a sealed VMA there."""
    if length > TASK_SIZE - (ARENA_BASE + addr):
        return -EINVAL
    if unmap_refused(state, arena_pages(addr, length)):
        return -EPERM
    _clear(state, arena_pages(addr, length))
    return 0


# ------------------------------------------------------- moving pages


def _move_vma(state: State, old: int, old_len: int, new_len: int, dest: int,
              dontunmap: bool) -> int:
    """move_vma: copy_vma at dest, page tables follow, then the old range goes."""
    at = old // PAGE
    vma = vmas.vma_at(state, at)
    assert vma is not None
    head, slot = _page(state, at), vmas.slot(state, at)
    src = range(at, at + old_len // PAGE)
    moved = [_page(state, i).state for i in src]
    pgoff = vmas.pgoff(state, at)
    carried: dict[int, str] = {}
    if state.pmds:  # the huge arena: page tables move too (§22), after the unmaps so far
        pmd.settle(state)
        carried = pmd.moved(state, src, None if dest == OUTSIDE else dest // PAGE, dontunmap)
    if dontunmap:
        _dontunmap_complete(state, vma, src)
    else:
        _clear(state, src)
    if dest == OUTSIDE:
        state.outside_mapped += new_len // PAGE
        state.outside_locked += new_len // PAGE if head.attrs.lo else 0
        state.outside_droppable += new_len // PAGE if head.attrs.dp else 0
        state.outside_dontfork += new_len // PAGE if head.attrs.dc else 0
        if head.attrs.obj:
            map_outside(state, head.attrs, pgoff, moved, new_len // PAGE,
                        populate=head.attrs.lo, anon=slot[1] != 0)
        # a page fork left shared stays shared where it went (world.py counts it)
        state.outside_frames += [(m, head.attrs) for m in moved if m[0] == SHARED_ANON]
        return OUTSIDE
    first, vid, (_, anon, acct) = dest // PAGE, vmas.new_id(state), slot
    for k in range(new_len // PAGE):
        # copy_vma keeps vm_pgoff, except an anonymous VMA without an anon_vma
        # takes its new address (so it can merge there).
        pg = pgoff + k if head.attrs.obj or anon else vmas.PGOFF_BASE + first + k
        letter = moved[k] if k < len(moved) else ABSENT
        state.pages[first + k] = Page(head.attrs.with_pgoff(pg), letter)
        state.vmas[first + k] = (vid, anon, acct)
    vmas.merge(state, range(first, first + new_len // PAGE))
    pmd.arrived(state, carried)
    return dest


def _dontunmap_complete(state: State, vma: range, src: range) -> None:
    """The old range keeps its protection and loses its pages. A locked old VMA is split
    around the moved range first, so only that range loses lo/lf and the rest stays
    locked (and counted in locked_vm): "mm/mremap: fix locked_vm leak by splitting VMA
    for MREMAP_DONTUNMAP" (stable 6.1.191). The old VMA loses its anon_vma if all of
    it was moved."""
    if _page(state, src.start).attrs.lo and src != vma:
        vid = vmas.new_id(state)
        for i in src:
            _, anon, acct = vmas.slot(state, i)
            state.vmas[i] = (vid, anon, acct)
        vma = src
    whole = src.start == vma.start and src.stop == vma.stop
    for i in vma:
        page, (vid, anon, acct) = _page(state, i), vmas.slot(state, i)
        letter = ABSENT if i in src else page.state
        state.pages[i] = Page(page.attrs.with_lock(False, False), letter)
        state.vmas[i] = (vid, 0 if whole else anon, acct)


def _extend(state: State, vma: range, count: int) -> None:
    """vma_merge_extend: the VMA grows into the free space after it."""
    last = vma.stop - 1
    attrs, slot, first = _page(state, last).attrs, vmas.slot(state, last), vmas.pgoff(state, last)
    for k in range(1, count + 1):
        state.pages[last + k] = Page(attrs.with_pgoff(first + k))
        state.vmas[last + k] = slot
    vmas.merge(state, range(vma.start, vma.stop + count), left=False)


def map_outside(state: State, attrs: Attrs, pgoff: int, moved: list[str], count: int,
                populate: bool, anon: bool = False) -> None:
    """Note a file VMA (shared or private) placed outside the arena, by mremap or by an
    mmap the kernel put elsewhere: the page-cache pages it maps are the pages that
    moved with it and, if it is populated (a locked VMA that grew, or a new mapping
    with MAP_POPULATE or MAP_LOCKED), the rest of it up to the object's end.
    `anon`: whether it has an anon_vma (a moved VMA keeps its own), which decides
    whether fork copies its page tables (`world.py`); a writable private VMA gets
    one when it is populated (do_cow_fault)."""
    grows = populate and not attrs.lf and attrs.populatable and count > len(moved)
    anon = anon or (grows and not attrs.shared and bool(attrs.prot & PROT_WRITE))
    mapped = {pgoff + k for k, letter in enumerate(moved) if letter in (SHMEM, SHMEM_TWICE)}
    copies = {pgoff + k for k, letter in enumerate(moved) if letter[0] in (ANON, SHARED_ANON)}
    guards = {pgoff + k for k, letter in enumerate(moved) if letter == GUARD}
    vma = OutsideFile(attrs.obj, pgoff, count, attrs, anon, mapped, copies, guards)
    state.outside_shmem_vmas.append(vma)
    if grows:
        _populate_file_vma(state, vma, pgoff + len(moved), state.placed)


def _populate_file_vma(state: State, vma: OutsideFile, first: int, placed: int = 0) -> None:
    """populate_vma_page_range from file offset `first` to the end of a VMA outside the arena:
    every page up to the object's end is allocated in its cache. A shared or read-only
    private VMA maps them with read faults, and fault-around also maps what else is
    cached before `first` in the VMA, in the 16-page window of the first fault
    (`pages.fault_around`): from its 64 KiB-aligned start, which `placed` (the page
    number of the VMA's start, when known) gives; unknown, the whole VMA is assumed. A
    page it maps already, or where it has a private copy (a private VMA written before
    it was made read-only), is not mapped again. A writable private VMA gets private
    copies instead (write faults: do_cow_fault, do_wp_page), which replace the cached
    pages it mapped. A guard marker that moved with the VMA ends the walk: GUP faults on
    it (EFAULT), and __mm_populate goes on at the next VMA (§15). Fault-around fills empty
    PTEs only, so never a marker's, but the window of the last fault before a marker
    reaches past it: to that window's end where `placed` is known, else to the VMA's."""
    stop = vma.first + vma.count
    cut = min([stop, *(g for g in vma.guards if g >= first)])
    if cut <= first:
        return  # the first fault is the marker's: nothing is faulted in
    size = state.shmem_size.get(vma.obj, 0)
    end = min(cut, size)
    cache = state.shmem.setdefault(vma.obj, set())
    if vma.obj in state.disk and not cache.issuperset(range(first, end)):
        raise Unsupported("populating a tmpfile mapping outside the arena where the file has "
                          "holes: which pages its read-ahead lets fault-around map there")
    cache.update(range(first, end))
    if vma.obj in state.disk:
        state.disk[vma.obj].unread -= set(range(first, end))  # the faults read them
    if vma.attrs.shared or not vma.attrs.prot & PROT_WRITE:
        # nothing past the object's end is mapped (filemap_map_pages stops at i_size)
        lowest, highest = vma.first, min(stop, size)
        if placed:  # the windows of the first and the last fault (also past the object's
            # end: the fault maps around before shmem_fault's SIGBUS), in the VMA
            lowest = max(vma.first, first - (placed + first - vma.first) % FAULT_AROUND_PAGES)
            last = max(first, min(cut, size + 1) - 1)
            window = last - (placed + last - vma.first) % FAULT_AROUND_PAGES
            highest = min(highest, window + FAULT_AROUND_PAGES)
        vma.mapped |= {pg for pg in cache if lowest <= pg < highest
                       and pg not in vma.copies and pg not in vma.guards}
    else:
        vma.mapped -= set(range(first, end))
        vma.copies |= set(range(first, end))


def populate_outside(state: State, onfault: bool = False) -> None:
    """mm_populate of the VMAs outside the arena (mlockall's MCL_CURRENT); a PROT_NONE
    or execute-only VMA fails and is skipped. With MCL_ONFAULT (`onfault`) every VMA but
    a VM_DROPPABLE one is lock-on-fault, and only those are faulted in.

    A writable private VMA is populated with write faults (populate_vma_page_range
    adds FOLL_WRITE "to break COW"): do_wp_page gives it a copy of each frame fork
    left shared (wp_page_copy), or reuses the last mapping of one, so either way the
    frames it moved with count as sharers no more (docs/SEMANTICS.md §8)."""
    for vma in state.outside_shmem_vmas:
        attrs = vma.attrs
        if attrs.populatable and not onfault:  # shmem: never droppable
            _populate_file_vma(state, vma, vma.first)
            if not attrs.shared and attrs.prot & PROT_WRITE:  # write faults: do_cow_fault
                vma.anon = True
    state.outside_frames = [(frame, a) for frame, a in state.outside_frames
                            if not (a.populatable and a.prot & PROT_WRITE and not a.shared
                                    and (a.dp or not onfault))]


def _free(state: State, first: int, count: int) -> bool:
    return first + count <= N and all(state.pages[i] is None for i in range(first, first + count))


def _clear(state: State, pages: range) -> None:
    """Unmap pages (their shmem objects are dropped once the call is done)."""
    mapped = [i for i in pages if 0 <= i < N and state.pages[i] is not None]
    for run in vmas.runs(mapped):
        vmas.drop_run(state, run)
        for i in run:
            state.pages[i] = None


def _page(state: State, i: int) -> Page:
    page = state.pages[i]
    assert page is not None
    return page
