"""mremap: SEMANTICS.md §6, following mm/mremap.c of 6.18 (`do_mremap` and its helpers).

The checks run in the kernel's order: `check_mremap_params` (flags, alignment,
lengths, what FIXED and DONTUNMAP need), then `remap_move` for a pure FIXED
move (old_len == new_len, which may span several VMAs), else `check_prep_vma`
on the VMA at the old address followed by `mremap_to` (a new address is
implied) or `mremap_at` (no-op, shrink in place, grow in place or move).
Growing a VM_LOCKED VMA populates the new part once the call is done, and
without CAP_IPC_LOCK is held to RLIMIT_MEMLOCK (EAGAIN). Kernels without
`features.mremap_multi_vma_move` (before about 6.17) treat every move as one VMA's.

Which VMA holds the old address decides EFAULT and in-place growth, but the
model keeps pages, not VMAs. So this module keeps its own picture of them in
`State.vmas`: per page a VMA id, the VMA's anon_vma and VM_ACCOUNT; a page's
vm_pgoff is `Attrs.pgoff` for shared pages and for private pages that mremap
placed (`_pgoff`). `track` brings the picture up to date by comparing the
pages with how it last saw them and replaying what the other calls did under
§11's rules (`vma_merge_new_range`, `vma_merge_existing_range`,
`find_mergeable_anon_vma`). That is exact when it runs after every call. Over
several calls it sees only the net change and assumes unmaps came first, then
new mappings (populated at once if they are wholly anonymous-present), then
flag changes, then faults. Flags `Attrs` lacks (MAP_NORESERVE's nr,
MAP_STACK's nh) are invisible to it.

Shared pages mapped at two addresses (the old and new VMA of a DONTUNMAP or an
old_len 0 duplicate, or a VMA moved outside the arena) lose pagemap's X bit:
they are `f` here, where mremap itself maps them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from fuzzer.model.pages import (
    OUTSIDE,
    RWX,
    TASK_SIZE,
    Prediction,
    arena_pages,
    fault_around,
    populate,
)
from fuzzer.model.state import ABSENT, ANON, SHMEM, Attrs, Page, State
from fuzzer.prog.program import ARENA_BASE, ARENA_PAGES, page_up
from fuzzer.prog.syscalls import (
    EAGAIN,
    EFAULT,
    EINVAL,
    ENOMEM,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE,
    PROT_WRITE,
    U64,
)

MODELLED = True

SHMEM_TWICE = "f"  # a shmem page mapped at two arena addresses: pagemap shows no X bit
PGOFF_BASE = ARENA_BASE // PAGE  # vm_pgoff a private anonymous mmap gives arena page 0
MREMAP_ALL = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP
N = ARENA_PAGES

Slot = tuple[int, int, bool]  # State.vmas entry: (VMA id, anon_vma id or 0, VM_ACCOUNT)


def mremap(state: State, old: int, old_len: int, new_len: int, flags: int, new: int) -> Prediction:
    """The result is an arena offset, OUTSIDE (an address the kernel chose) or -errno."""
    track(state)
    ret, grown = _do_mremap(state, old, old_len, new_len, flags, new)
    state.drop_unmapped_objects()
    state.vmas_seen = list(state.pages)
    if grown is not None:
        _populate(state, grown)  # mm_populate after the lock is dropped, errors ignored
        track(state)  # the anon_vma those faults gave the VMA
    _mark_shmem_mapped_twice(state)
    state.vmas_seen = list(state.pages)
    return Prediction(ret=ret)


# ------------------------------------------------------------ the call


def _do_mremap(
    state: State, old: int, old_len: int, new_len: int, flags: int, new: int
) -> tuple[int, range | None]:
    """do_mremap: the result (arena offset, OUTSIDE or -errno) and the range to populate."""
    old_len = page_up(old_len) & U64  # PAGE_ALIGN, which wraps to 0
    new_len = page_up(new_len) & U64
    # check_mremap_params
    if flags & ~MREMAP_ALL or old % PAGE or not new_len or new_len > TASK_SIZE:
        return -EINVAL, None
    implies_new = bool(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
    dontunmap = bool(flags & MREMAP_DONTUNMAP)
    if implies_new and (
        new % PAGE
        or not flags & MREMAP_MAYMOVE
        or (dontunmap and old_len != new_len)
        or _overlaps(old, old_len, new, new_len)
    ):
        return -EINVAL, None
    if flags & MREMAP_FIXED and old_len == new_len and state.features.mremap_multi_vma_move:
        return _remap_move(state, old, old_len, new, dontunmap), None
    # check_prep_vma
    vma = _vma_at(state, old // PAGE)
    if vma is None:
        return -EFAULT, None
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
    if implies_new:
        ret = _mremap_to(state, old, old_len, new_len, new, flags)
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


def _mremap_to(state: State, old: int, old_len: int, new_len: int, new: int, flags: int) -> int:
    if flags & MREMAP_FIXED:
        _clear(state, arena_pages(new, new_len))  # do_munmap of the target comes first
        if _vma_at(state, old // PAGE) is None:
            return -EFAULT  # old_len 0 at new: the target was the old VMA
    if new_len < old_len:
        error = _munmap(state, old + new_len, old_len - new_len)
        if error:
            return error  # the target stays unmapped
        old_len = new_len
    dest = new
    if not flags & MREMAP_FIXED and not _free(state, new // PAGE, new_len // PAGE):
        dest = OUTSIDE  # DONTUNMAP alone: new is a hint, used only if the range is free
    return _move_vma(state, old, old_len, new_len, dest, bool(flags & MREMAP_DONTUNMAP))


def _remap_move(state: State, old: int, length: int, new: int, dontunmap: bool) -> int:
    """remap_move: move every VMA in the range, keeping the gaps between them."""
    start, end = old // PAGE, (old + length) // PAGE
    res, target, last_end, pos = -EFAULT, new // PAGE, 0, start
    seen = False
    while (vma := _next_vma(state, pos, end)) is not None:
        if not seen and start < vma.start:
            return -EFAULT  # no gap permitted at the start of the range
        dest = target + (vma.start - last_end if seen else 0)
        last_end = vma.stop
        first = max(vma.start, start)
        count = min(end, vma.stop) - first
        # Per VMA, check_prep_vma passes (no resize) and mremap_to unmaps its target.
        _clear(state, range(dest, dest + count))
        _move_vma(state, first * PAGE, count * PAGE, count * PAGE, dest * PAGE, dontunmap)
        res = res if seen else dest * PAGE
        seen, target, pos = True, dest + count, first + count
    return res


def _munmap(state: State, addr: int, length: int) -> int:
    """do_vmi_munmap of a shrunk tail: 0 or -EINVAL."""
    if length > TASK_SIZE - (ARENA_BASE + addr):
        return -EINVAL
    _clear(state, arena_pages(addr, length))
    return 0


# ------------------------------------------------------- moving pages


def _move_vma(state: State, old: int, old_len: int, new_len: int, dest: int,
              dontunmap: bool) -> int:
    """move_vma: copy_vma at dest, page tables follow, then the old range goes."""
    at = old // PAGE
    vma = _vma_at(state, at)
    assert vma is not None
    head, slot = _page(state, at), _slot(state, at)
    src = range(at, at + old_len // PAGE)
    moved = [_page(state, i).state for i in src]
    pgoff = _pgoff(state, at)
    if dontunmap:
        _dontunmap_complete(state, vma, src)
    else:
        _clear(state, src)
    if dest == OUTSIDE:
        state.outside_mapped += new_len // PAGE
        state.outside_locked += new_len // PAGE if head.attrs.lo else 0
        if head.attrs.shared:
            _map_outside(state, head.attrs, pgoff, moved, new_len // PAGE)
        return OUTSIDE
    first, vid, (_, anon, acct) = dest // PAGE, _new_id(state), slot
    for k in range(new_len // PAGE):
        # copy_vma keeps vm_pgoff, except an anonymous VMA without an anon_vma
        # takes its new address (so it can merge there).
        pg = pgoff + k if head.attrs.shared or anon else PGOFF_BASE + first + k
        letter = moved[k] if k < len(moved) else ABSENT
        state.pages[first + k] = Page(replace(head.attrs, pgoff=pg), letter)
        state.vmas[first + k] = (vid, anon, acct)
    _merge(state, range(first, first + new_len // PAGE))
    return dest


def _dontunmap_complete(state: State, vma: range, src: range) -> None:
    """The old VMA keeps its range and protection, loses its pages and lo/lf (the whole
    VMA, not just the moved part), and its anon_vma if all of it was moved."""
    whole = src.start == vma.start and src.stop == vma.stop
    for i in vma:
        page, (vid, anon, acct) = _page(state, i), _slot(state, i)
        letter = ABSENT if i in src else page.state
        state.pages[i] = Page(page.attrs.with_lock(False, False), letter)
        state.vmas[i] = (vid, 0 if whole else anon, acct)


def _extend(state: State, vma: range, count: int) -> None:
    """vma_merge_extend: the VMA grows into the free space after it."""
    last = vma.stop - 1
    attrs, slot, pgoff = _page(state, last).attrs, _slot(state, last), _pgoff(state, last)
    for k in range(1, count + 1):
        state.pages[last + k] = Page(replace(attrs, pgoff=pgoff + k))
        state.vmas[last + k] = slot
    _merge(state, range(vma.start, vma.stop + count), left=False)


def _populate(state: State, pages: range) -> None:
    """mm_populate of a locked VMA's new part (all in one VMA). A shmem page past the
    object's end faults around what is cached near it, then fails (SIGBUS inside GUP),
    which ends the VMA's population."""
    for i in pages:
        a = _attrs(state, i)
        if a.shared and a.pgoff >= state.shmem_size.get(a.obj, a.pgoff + 1):
            if not a.lf and a.prot & RWX:
                fault_around(state, i)
            return
        populate(state, range(i, i + 1), ignore_errors=True)


def _map_outside(state: State, attrs: Attrs, pgoff: int, moved: list[str], count: int) -> None:
    """Note the shmem pages a VMA moved outside the arena maps: the pages that moved and,
    if it is locked and grew, its populated tail (allocated in the object, and with
    fault-around mapping what else the object caches in its range)."""
    cache = state.shmem.setdefault(attrs.obj, set())
    mapped = {pgoff + k for k, letter in enumerate(moved) if letter in (SHMEM, SHMEM_TWICE)}
    if attrs.lo and not attrs.lf and attrs.prot & RWX and count > len(moved):
        end = min(pgoff + count, state.shmem_size.get(attrs.obj, pgoff + count))
        cache.update(range(pgoff + len(moved), end))
        mapped |= {pg for pg in cache if pgoff <= pg < end}
    state.outside_shmem |= {(attrs.obj, pg) for pg in mapped}


def _mark_shmem_mapped_twice(state: State) -> None:
    """A shmem page mapped at two addresses (in the arena or outside) is not exclusive
    (pagemap bit 56)."""
    def key(p: Page) -> tuple[int, int]:
        return p.attrs.obj, p.attrs.pgoff

    mapped = [p if p is not None and p.attrs.shared and p.state in (SHMEM, SHMEM_TWICE)
              else None for p in state.pages]
    count = Counter(key(p) for p in mapped if p is not None) + Counter(state.outside_shmem)
    for i, p in enumerate(mapped):
        if p is not None:
            letter = SHMEM_TWICE if count[key(p)] > 1 else SHMEM
            if p.state != letter:
                state.pages[i] = Page(p.attrs, letter)


def _free(state: State, first: int, count: int) -> bool:
    return first + count <= N and all(state.pages[i] is None for i in range(first, first + count))


def _clear(state: State, pages: range) -> None:
    """Unmap pages (their shmem objects are dropped once the call is done)."""
    for i in pages:
        if 0 <= i < N and state.pages[i] is not None:
            _drop(state, i)
            state.pages[i] = None


# --------------------------------------------------------- VMA identity


def track(state: State) -> None:
    """Bring `State.vmas` up to date with what other calls did to the pages since last time."""
    created: list[int] = []
    was_attrs: dict[int, Attrs] = {}  # the flags before, where they may have changed
    faulted: list[int] = []
    for i, (was, now) in enumerate(zip(state.vmas_seen, state.pages, strict=True)):
        if now is was:
            continue
        if was is not None and (now is None or _replaced(was.attrs, now.attrs)):
            _drop(state, i)
            was = None
        if now is None:
            continue
        if was is None:
            created.append(i)
        else:
            was_attrs[i] = was.attrs
        if now.state == ANON and (was is None or was.state != ANON):
            faulted.append(i)
    for run in _runs(created, lambda i: _same_mmap(state, i)):
        _new_mapping(state, run, was_attrs)
    changed = [i for i in sorted(was_attrs) if _flags(was_attrs[i]) != _flags(_attrs(state, i))]
    for run in _runs(changed, lambda i: _same_change(state, was_attrs, i)):
        _modify(state, run, was_attrs[run.start])
    for i in faulted:
        _anon_vma_prepare(state, i)
    for i in created:  # a new shmem object is as large as the mmap that made it
        a = _attrs(state, i)
        if a.shared and state.shmem_size.get(a.obj, 0) <= a.pgoff:
            state.shmem_size[a.obj] = a.pgoff + 1
    state.vmas_seen = list(state.pages)


def _new_mapping(state: State, run: range, was_attrs: dict[int, Attrs]) -> None:
    """One mmap: a VMA with the flags most of its pages have now (the others count as
    changed later), merged with its neighbours, populated at once if all of it is."""
    attrs = Counter(replace(_attrs(state, i), pgoff=0) for i in run).most_common(1)[0][0]
    vid = _new_id(state)
    for i in run:
        state.vmas[i] = (vid, 0, not attrs.shared and bool(attrs.prot & PROT_WRITE))
        was_attrs[i] = attrs
    _merge(state, run)
    if all(_page(state, i).state == ANON for i in run):
        _anon_vma_prepare(state, run.start)


def _replaced(was: Attrs, now: Attrs) -> bool:
    """Whether a page belongs to a new mapping: mmap gives new objects and new pgoffs."""
    return (was.shared, was.obj, was.pgoff) != (now.shared, now.obj, now.pgoff)


def _flags(a: Attrs) -> tuple[int, bool, bool, bool, bool]:
    """What mprotect, mlock and madvise change in a VMA's flags."""
    return a.prot, a.lo, a.lf, a.dc, a.wf


def _same_mmap(state: State, i: int) -> bool:
    """Whether page i came from the same mmap as page i-1: the same object, the next
    offset (mmap numbers its pages from 0; later calls may have changed the flags)."""
    a, b = _attrs(state, i - 1), _attrs(state, i)
    return (a.shared, a.obj) == (b.shared, b.obj) and b.pgoff == a.pgoff + 1


def _same_change(state: State, was: dict[int, Attrs], i: int) -> bool:
    """Whether page i had the same flag change as page i-1, in the same VMA."""
    same_vma = _slot(state, i - 1)[0] == _slot(state, i)[0]
    before = _flags(was[i - 1]) == _flags(was[i])
    return same_vma and before and _flags(_page(state, i - 1).attrs) == _flags(
        _page(state, i).attrs)


def _runs(indexes: list[int], joins: Callable[[int], bool]) -> list[range]:
    """Consecutive indexes, split where `joins(i)` says page i does not continue i-1."""
    runs: list[range] = []
    for i in indexes:
        if runs and runs[-1].stop == i and joins(i):
            runs[-1] = range(runs[-1].start, i + 1)
        else:
            runs.append(range(i, i + 1))
    return runs


def _modify(state: State, run: range, was: Attrs) -> None:
    """vma_modify_flags (mprotect_fixup, mlock_fixup, madvise): split, set flags, merge."""
    _split(state, run.start)
    _split(state, run.stop)
    _, anon, acct = _slot(state, run.start)
    acct = _account(was, _page(state, run.start).attrs, acct, anon)
    vid = _new_id(state)
    for i in run:
        state.vmas[i] = (vid, anon, acct)
    _merge(state, run)


def _account(was: Attrs, now: Attrs, acct: bool, anon: int) -> bool:
    """VM_ACCOUNT after mprotect_fixup: charged when a private VMA becomes writable,
    uncharged when it becomes read-only before it has an anon_vma."""
    if now.shared or was.prot == now.prot:
        return acct
    if now.prot & PROT_WRITE:
        return acct or not was.prot & PROT_WRITE
    return acct and bool(anon)


def _anon_vma_prepare(state: State, i: int) -> None:
    """A write fault gives a private VMA an anon_vma, reusing a neighbour's if it can
    (find_mergeable_anon_vma: next first, then prev)."""
    vma = _vma_at(state, i)
    vid, anon, acct = _slot(state, i)
    if vma is None or anon or _page(state, i).attrs.shared:
        return
    if vma.stop < N and _anon_reusable(state, vma.stop):
        anon = _slot(state, vma.stop)[1]
    elif vma.start > 0 and _anon_reusable(state, vma.start):
        anon = _slot(state, vma.start - 1)[1]
    anon = anon or _new_id(state)
    for j in vma:
        state.vmas[j] = (vid, anon, acct)


def _anon_reusable(state: State, i: int) -> bool:
    """anon_vma_compatible between the VMAs that meet at page i (protection aside),
    and the other one has an anon_vma."""
    if not _boundary(state, i):
        return False
    a, b = _page(state, i - 1).attrs, _page(state, i).attrs
    same = replace(a, prot=0, pgoff=0) == replace(b, prot=0, pgoff=0)
    (_, anon_a, acct_a), (_, anon_b, acct_b) = _slot(state, i - 1), _slot(state, i)
    return same and acct_a == acct_b and _contiguous(state, i) and bool(anon_a or anon_b)


def _merge(state: State, vma: range, left: bool = True) -> None:
    """vma_merge_new_range: join the VMA to its neighbours where §11 allows; with both,
    only if their anon_vmas are compatible, else to the left one only."""
    s, e = vma.start, vma.stop
    to_left = left and _mergeable(state, s)
    to_right = _mergeable(state, e)
    if to_left and to_right and not _anon_ok(_slot(state, s - 1)[1], _slot(state, e)[1]):
        to_right = False
    lo = _vma_range(state, s - 1).start if to_left else s
    hi = _vma_range(state, e).stop if to_right else e
    anon = next((_slot(state, i)[1] for i in (lo, s, hi - 1) if _slot(state, i)[1]), 0)
    vid = _slot(state, lo)[0]
    for i in range(lo, hi):
        state.vmas[i] = (vid, anon, _slot(state, i)[2])


def _mergeable(state: State, i: int) -> bool:
    """is_mergeable_vma and is_mergeable_anon_vma for the VMAs that meet at page i."""
    if not _boundary(state, i):
        return False
    a, b = _page(state, i - 1).attrs, _page(state, i).attrs
    same = replace(a, pgoff=0) == replace(b, pgoff=0)
    (_, anon_a, acct_a), (_, anon_b, acct_b) = _slot(state, i - 1), _slot(state, i)
    return same and acct_a == acct_b and _contiguous(state, i) and _anon_ok(anon_a, anon_b)


def _anon_ok(a: int, b: int) -> bool:
    return not a or not b or a == b


def _same_vma(state: State, i: int) -> bool:
    """Whether pages i-1 and i are in one VMA."""
    if not 0 < i < N:
        return False
    a, b = state.vmas[i - 1], state.vmas[i]
    return a is not None and b is not None and a[0] == b[0]


def _boundary(state: State, i: int) -> bool:
    """Whether two different VMAs meet at page i."""
    if not 0 < i < N:
        return False
    a, b = state.vmas[i - 1], state.vmas[i]
    return a is not None and b is not None and a[0] != b[0]


def _contiguous(state: State, i: int) -> bool:
    return _pgoff(state, i) == _pgoff(state, i - 1) + 1


def _pgoff(state: State, i: int) -> int:
    """vm_pgoff of page i: the shmem offset, or for a private page the one mremap gave it,
    else what mmap gives (its address; mmap leaves Attrs.pgoff below the arena size)."""
    a = _page(state, i).attrs
    return a.pgoff if a.shared or a.pgoff >= PGOFF_BASE else PGOFF_BASE + i


def _split(state: State, i: int) -> None:
    """split_vma at page i: the part from i on becomes a VMA of its own."""
    if _same_vma(state, i):
        vid = _new_id(state)
        for j in _vma_range(state, i):
            if j >= i:
                _, anon, acct = _slot(state, j)
                state.vmas[j] = (vid, anon, acct)


def _drop(state: State, i: int) -> None:
    _split(state, i)
    _split(state, i + 1)
    state.vmas[i] = None


def _vma_at(state: State, i: int) -> range | None:
    if not 0 <= i < N or state.vmas[i] is None:
        return None
    return _vma_range(state, i)


def _vma_range(state: State, i: int) -> range:
    vid = _slot(state, i)[0]
    start, stop = i, i + 1
    while start > 0 and (s := state.vmas[start - 1]) is not None and s[0] == vid:
        start -= 1
    while stop < N and (s := state.vmas[stop]) is not None and s[0] == vid:
        stop += 1
    return range(start, stop)


def _next_vma(state: State, pos: int, end: int) -> range | None:
    """The first VMA that has a page in [pos, end)."""
    return next((_vma_range(state, i) for i in range(pos, min(end, N))
                 if state.vmas[i] is not None), None)


def _attrs(state: State, i: int) -> Attrs:
    return _page(state, i).attrs


def _page(state: State, i: int) -> Page:
    page = state.pages[i]
    assert page is not None
    return page


def _slot(state: State, i: int) -> Slot:
    slot = state.vmas[i]
    assert slot is not None
    return slot


def _new_id(state: State) -> int:
    state.next_id += 1
    return state.next_id
