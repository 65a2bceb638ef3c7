"""VMA identity: which arena pages make up one VMA (docs/SEMANTICS.md §11, mm/vma.c of 6.18).

The model keeps pages, not VMAs, but some semantics depend on VMA boundaries:
mremap (EFAULT, growth in place) and fault-around (`do_fault_around` clamps
its window to the faulting VMA). So this module keeps a picture of them in
`State.vmas`: per page a VMA id, the VMA's anon_vma and VM_ACCOUNT; a page's
vm_pgoff is `Attrs.pgoff` for file pages (anonymous shared, memfd shared or
private) and for private anonymous pages that mremap placed (`pgoff`).

`track` brings the picture up to date by comparing the pages with how it last
saw them and replaying what the calls did under §11's rules
(`vma_merge_new_range`, `vma_merge_existing_range`, `find_mergeable_anon_vma`).
`calls.step` runs it after every call, and `vma_of` before it answers, so it
is exact. Over several calls it would see only the net change, assuming
unmaps came first, then new mappings (populated at once if they are wholly
anonymous-present), then flag changes, then faults. mremap, which moves VMAs
itself, updates the picture directly with the helpers here (`merge`, `drop`,
`new_id`) and marks what it did as seen.

Flags that prevent a merge are the ones `Attrs` keeps (protection, lo, lf,
dc, wf, nr, hg, nh, rr, sr, dd, mg), plus VM_ACCOUNT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fuzzer.model.state import ANON, Attrs, Page, State
from fuzzer.prog.program import ARENA_BASE, ARENA_PAGES
from fuzzer.prog.syscalls import PAGE, PROT_WRITE

PGOFF_BASE = ARENA_BASE // PAGE  # vm_pgoff a private anonymous mmap gives arena page 0
N = ARENA_PAGES

Slot = tuple[int, int, bool]  # State.vmas entry: (VMA id, anon_vma id or 0, VM_ACCOUNT)


def vma_of(state: State, i: int) -> range:
    """The arena pages of the VMA that holds (mapped) page i, as the kernel has it now."""
    track(state)
    return _vma_range(state, i)


def track(state: State) -> None:
    """Bring `State.vmas` up to date with what other calls did to the pages since last time."""
    if state.pages == state.vmas_seen:
        return  # (vma_of asks at every fault: a page equal to the one seen changes nothing)
    created: list[int] = []
    was_attrs: dict[int, Attrs] = {}  # the flags before, where they may have changed
    faulted: list[int] = []
    dropped: list[int] = []
    seen, pages = state.vmas_seen, state.pages
    for i in range(N):  # not zip(strict=True), which mypyc calls as a Python builtin
        was, now = seen[i], pages[i]
        if now is was:
            continue
        if was is not None and (now is None or _replaced(was.attrs, now.attrs)):
            dropped.append(i)
            was = None
        if now is None:
            continue
        if was is None:
            created.append(i)
        else:
            was_attrs[i] = was.attrs
        if now.state[0] == ANON and (was is None or was.state[0] != ANON):  # A or Al
            faulted.append(i)
    for run in runs(dropped):
        drop_run(state, run)
    for run in _runs(created, lambda i: _same_mmap(state, i)):
        _new_mapping(state, run, was_attrs)
    changed = [i for i in sorted(was_attrs)
               if was_attrs[i].flags_key() != _attrs(state, i).flags_key()]
    pending = set(changed)
    # The calls change VMA after VMA, lowest first: when one is done, the next still has
    # its old flags (and VM_ACCOUNT), so it joins this one only when its own turn comes.
    for run in _runs(changed, lambda i: _same_change(state, was_attrs, i)):
        _modify(state, run, was_attrs[run.start], right=run.stop not in pending)
    for i in faulted:
        _anon_vma_prepare(state, i)
    state.vmas_seen = list(state.pages)


def _new_mapping(state: State, run: range, was_attrs: dict[int, Attrs]) -> None:
    """One mmap: a VMA with the flags most of its pages have now (the others count as
    changed later), merged with its neighbours, populated at once if all of it is."""
    attrs = _most_common(_attrs(state, i).with_pgoff(0) for i in run)
    vid = new_id(state)
    # accountable_mapping: VM_ACCOUNT for private writable memory without VM_NORESERVE
    acct = not attrs.shared and not attrs.nr and bool(attrs.prot & PROT_WRITE)
    for i in run:
        state.vmas[i] = (vid, 0, acct)
        was_attrs[i] = attrs
    merge(state, run)
    if all(_page(state, i).state[0] == ANON for i in run):
        _anon_vma_prepare(state, run.start)


def _most_common(values: Iterable[Attrs]) -> Attrs:
    """Counter(values).most_common(1)'s value (the first seen among equals), without
    Counter, which is interpreted Python."""
    counts: dict[Attrs, int] = {}
    for a in values:
        counts[a] = counts.get(a, 0) + 1
    best, most = None, 0
    for a, n in counts.items():
        if n > most:
            best, most = a, n
    assert best is not None, "an empty run"
    return best


def _replaced(was: Attrs, now: Attrs) -> bool:
    """Whether a page belongs to a new mapping: mmap gives new objects and new pgoffs."""
    return (was.shared, was.obj, was.pgoff) != (now.shared, now.obj, now.pgoff)


def _same_mmap(state: State, i: int) -> bool:
    """Whether page i came from the same mmap as page i-1: the same object, the next
    offset (mmap numbers its pages from 0; later calls may have changed the flags)."""
    a, b = _attrs(state, i - 1), _attrs(state, i)
    return (a.shared, a.obj) == (b.shared, b.obj) and b.pgoff == a.pgoff + 1


def _same_change(state: State, was: dict[int, Attrs], i: int) -> bool:
    """Whether page i had the same flag change as page i-1, in the same VMA."""
    same_vma = slot(state, i - 1)[0] == slot(state, i)[0]
    before = was[i - 1].flags_key() == was[i].flags_key()
    return same_vma and before and \
        _page(state, i - 1).attrs.flags_key() == _page(state, i).attrs.flags_key()


def _runs(indexes: list[int], joins: Callable[[int], bool]) -> list[range]:
    """Consecutive indexes, split where `joins(i)` says page i does not continue i-1."""
    runs: list[range] = []
    for i in indexes:
        if runs and runs[-1].stop == i and joins(i):
            runs[-1] = range(runs[-1].start, i + 1)
        else:
            runs.append(range(i, i + 1))
    return runs


def _modify(state: State, run: range, was: Attrs, right: bool = True) -> None:
    """vma_modify_flags (mprotect_fixup, mlock_fixup, madvise): split, set flags, merge
    (with the next VMA only if `right`: not if the same call changes it later)."""
    _split(state, run.start)
    _split(state, run.stop)
    _, anon, acct = slot(state, run.start)
    acct = _account(was, _page(state, run.start).attrs, acct,
                    anon or not state.features.mprotect_uncharges)
    vid = new_id(state)
    for i in run:
        state.vmas[i] = (vid, anon, acct)
    merge(state, run, right=right)


def _account(was: Attrs, now: Attrs, acct: bool, anon: int | bool) -> bool:
    """VM_ACCOUNT after mprotect_fixup: charged when a private VMA without VM_NORESERVE
    becomes writable, uncharged when an anonymous one (vma_is_anonymous: not a memfd
    mapped private) becomes read-only before it has an anon_vma (`anon` false; older
    kernels never uncharge: feature `mprotect_uncharges`)."""
    if now.shared or was.prot == now.prot:
        return acct
    if now.prot & PROT_WRITE:
        return acct or not (was.prot & PROT_WRITE or was.nr)
    return acct and bool(anon or now.obj)


def anon_vma_at(state: State, i: int) -> None:
    """anon_vma_prepare for the private VMA at page i, from a fault that leaves no
    anonymous page behind (do_cow_fault's SIGBUS past the end of a file)."""
    track(state)
    _anon_vma_prepare(state, i)


def _anon_vma_prepare(state: State, i: int) -> None:
    """A write fault gives a private VMA an anon_vma, reusing a neighbour's if it can
    (find_mergeable_anon_vma: next first, then prev)."""
    entry = state.vmas[i] if 0 <= i < N else None
    if entry is None or entry[1] or _page(state, i).attrs.shared:
        return  # (first: the VMA's bounds cost a walk, and most faults find one already)
    vma = _vma_range(state, i)
    vid, anon, acct = entry
    if vma.stop < N and _anon_reusable(state, vma.stop):
        anon = slot(state, vma.stop)[1]
    elif vma.start > 0 and _anon_reusable(state, vma.start):
        anon = slot(state, vma.start - 1)[1]
    anon = anon or new_id(state)
    for j in vma:
        state.vmas[j] = (vid, anon, acct)


def _anon_reusable(state: State, i: int) -> bool:
    """anon_vma_compatible between the VMAs that meet at page i (protection aside),
    and the other one has an anon_vma."""
    if not _boundary(state, i):
        return False
    a, b = _page(state, i - 1).attrs, _page(state, i).attrs
    same = a.anon_key() == b.anon_key()
    (_, anon_a, acct_a), (_, anon_b, acct_b) = slot(state, i - 1), slot(state, i)
    # reusable_anon_vma: only an anon_vma with a single chain entry (not a fork child's)
    return same and acct_a == acct_b and _contiguous(state, i) and (anon_a or anon_b) > 0


def merge(state: State, vma: range, left: bool = True, right: bool = True) -> None:
    """vma_merge_new_range: join the VMA to its neighbours where §11 allows; with both,
    only if their anon_vmas are compatible, else to the left one only."""
    s, e = vma.start, vma.stop
    to_left = left and _mergeable(state, s)
    to_right = right and _mergeable(state, e)
    if not state.features.merge_into_null_anon_vma and slot(state, s)[1]:
        # Older kernels: a VMA with an anon_vma does not join a neighbour without one.
        to_left = to_left and bool(slot(state, s - 1)[1])
        to_right = to_right and bool(slot(state, e)[1])
    if to_left and to_right and not _anon_ok(slot(state, s - 1)[1], slot(state, e)[1]):
        to_right = False
    lo = _vma_range(state, s - 1).start if to_left else s
    hi = _vma_range(state, e).stop if to_right else e
    anon = next((slot(state, i)[1] for i in (lo, s, hi - 1) if slot(state, i)[1]), 0)
    vid = slot(state, lo)[0]
    for i in range(lo, hi):
        state.vmas[i] = (vid, anon, slot(state, i)[2])
    if lo < s or hi > e:
        spread_sticky(state, range(lo, hi))


def spread_sticky(state: State, vma: range) -> None:
    """VM_STICKY (6.18's VM_MAYBE_GUARD, `Attrs.gu`): a VMA that one merged part had it
    in has it whole."""
    if any(_page(state, i).attrs.gu for i in vma):
        for i in vma:
            p = _page(state, i)
            if not p.attrs.gu:
                state.pages[i] = Page(p.attrs.with_flags({"gu": True}), p.state)


def _mergeable(state: State, i: int) -> bool:
    """is_mergeable_vma and is_mergeable_anon_vma for the VMAs that meet at page i."""
    if not _boundary(state, i):
        return False
    a, b = _page(state, i - 1).attrs, _page(state, i).attrs
    same = a.merge_key() == b.merge_key()  # VM_STICKY aside
    (_, anon_a, acct_a), (_, anon_b, acct_b) = slot(state, i - 1), slot(state, i)
    return same and acct_a == acct_b and _contiguous(state, i) and _anon_ok(anon_a, anon_b)


def _anon_ok(a: int, b: int) -> bool:
    """is_mergeable_anon_vma: a fork child's anon_vma (negative id: its chain links the
    parent's too, `vma_had_uncloned_parent`) joins only a VMA that shares it."""
    if not a or not b:
        return a >= 0 and b >= 0
    return a == b


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
    return pgoff(state, i) == pgoff(state, i - 1) + 1


def pgoff(state: State, i: int) -> int:
    """vm_pgoff of page i: the file offset (AS, FS, FP), or for a private anonymous page
    the one mremap gave it, else what mmap gives (its address; mmap leaves
    Attrs.pgoff below the arena size)."""
    a = _page(state, i).attrs
    return a.pgoff if a.obj or a.pgoff >= PGOFF_BASE else PGOFF_BASE + i


def _split(state: State, i: int) -> None:
    """split_vma at page i: the part from i on becomes a VMA of its own."""
    if _same_vma(state, i):
        vid = new_id(state)
        for j in _vma_range(state, i):
            if j >= i:
                _, anon, acct = slot(state, j)
                state.vmas[j] = (vid, anon, acct)


def split_at(state: State, i: int) -> None:
    """split_vma at page i and nothing else (what a refused munmap leaves, mseal.py)."""
    _split(state, i)


def runs(indexes: list[int]) -> list[range]:
    """Consecutive indexes, as ranges."""
    return _runs(indexes, lambda i: True)


def drop_run(state: State, run: range) -> None:
    """The pages of `run` leave their VMAs: split at both ends, then gone. (Page by page
    this renamed the rest of a VMA at every page: quadratic in a 512-page VMA.)"""
    _split(state, run.start)
    _split(state, run.stop)
    for i in run:
        state.vmas[i] = None


def vma_at(state: State, i: int) -> range | None:
    if not 0 <= i < N or state.vmas[i] is None:
        return None
    return _vma_range(state, i)


def _vma_range(state: State, i: int) -> range:
    vid = slot(state, i)[0]
    start, stop = i, i + 1
    while start > 0 and (s := state.vmas[start - 1]) is not None and s[0] == vid:
        start -= 1
    while stop < N and (s := state.vmas[stop]) is not None and s[0] == vid:
        stop += 1
    return range(start, stop)


def next_vma(state: State, pos: int, end: int) -> range | None:
    """The first VMA that has a page in [pos, end)."""
    return next((_vma_range(state, i) for i in range(pos, min(end, N))
                 if state.vmas[i] is not None), None)


def _attrs(state: State, i: int) -> Attrs:
    return _page(state, i).attrs


def _page(state: State, i: int) -> Page:
    page = state.pages[i]
    assert page is not None
    return page


def slot(state: State, i: int) -> Slot:
    entry = state.vmas[i]
    assert entry is not None
    return entry


def new_id(state: State) -> int:
    state.next_id += 1
    return state.next_id
