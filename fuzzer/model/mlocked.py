"""Which present arena pages the kernel must, and must not, have marked PG_mlocked.

A page is mlocked while a VM_LOCKED VMA maps it (mm/mlock.c: `mlock_folio` when it is
mapped into one or the VMA is locked, `munlock_folio` when a locked VMA lets it go;
docs/SEMANTICS.md §20). The kernel counts the locked mappings of a page
(`folio->mlock_count`) only while the page is on the unevictable LRU, and says it
"might undercount": a page mapped by two locked VMAs may lose the flag when one lets
go. So the rule the oracle holds the kernel to has two halves of different reach:

- **must not**: a page that no VM_LOCKED VMA of any process maps is not mlocked (a
  page left mlocked is an unevictable leak). Holds for every small page.
- **must**: a private anonymous page mapped once, by a locked VMA, is mlocked. So is a
  shared-memory page (memfd, shared anonymous) mapped once, by a locked VMA, unless
  `State.lock_shared` holds it: two locked mappings have mapped it at once since it last
  had none (a page that enters the LRU already mlocked starts with a count of 0,
  `lru_add`: "Err on the safe side, underestimate", so one of two locked mappings
  letting go can clear the flag the other still asks for), or a MAP_FIXED mmap or an
  mremap replaced its locked mapping with another (the queued munlock of the old one
  clears the flag the new one's mlock found still set), or an exit munlocked it and the
  next call mapped it locked (world.step: the same, with the exit's munlock).

Not judged: absent pages, the zero page and guard markers (no page); any page whose
frame a VMA outside the arena maps (the model does not follow those VMAs' lock flags).
Pages of large folios (§19) only in the first half, and only while no large-folio page
of any process is locked: `mlock_folio` skips a folio the mlock walk does not cover
whole, and `munlock_vma_folio` munlocks a whole folio when one locked mapping of part of
it goes, leaving the rest to reclaim, so a folio partly locked may be either. A
tmpfile's page cache (§21) holds large folios too (read-ahead allocates them, of sizes
the model does not keep): its pages are judged in the first half only while no locked
VMA of any process maps any page of that file, and no VMA outside the arena maps it.
"""

from __future__ import annotations

from fuzzer.model.pages import count_mappings, locked_cache_pages
from fuzzer.model.state import (
    ABSENT,
    ANON,
    GUARD,
    LARGE,
    SHARED_ANON,
    SHMEM,
    SHMEM_TWICE,
    ZERO,
    State,
)


def expected(state: State) -> tuple[int, int]:
    """(must, must_not): bit i set where arena page i of `state` must be mlocked, and
    where it must not be."""
    states = state.processes()
    if len(states) == 1 and not state.outside_frames and not state.outside_shmem_vmas:
        alone = _alone(state)
        if alone is not None:
            return alone
    return counted(state)


def counted(state: State) -> tuple[int, int]:
    """`expected` by counting every mapping of each frame over the processes (what
    `_alone` shortcuts; tests/test_model_mlocked.py holds the two together)."""
    states = state.processes()
    mapped, cached = count_mappings(states)
    outside = {f for s in states for f, _ in s.outside_frames}
    outside_cached = {(v.obj, pg) for s in states for v in s.outside_shmem_vmas
                      for pg in v.mapped}
    locked: dict[object, int] = {}
    for s in states:
        for p in s.pages:
            if p is not None and p.attrs.lo:
                frame = _frame(p.state, p.attrs.obj, p.attrs.pgoff)
                locked[frame] = locked.get(frame, 0) + 1
    large = _large_unlocked(states)
    disk = _disk_locked(states)
    shared = state.lock_shared
    must = must_not = 0
    for i, p in enumerate(state.pages):
        if p is None or p.state in (ABSENT, ZERO, GUARD):
            continue
        letter = p.state
        if letter[-1] == LARGE:
            must_not |= large << i
            continue
        # n mappings of the frame, lo of them locked; whether mapped once by a locked VMA
        # it must be mlocked (a frame fork shared never: once alone it is `A` again)
        if letter[0] == SHARED_ANON:
            if letter in outside:
                continue
            n, lo, judged = mapped.get(letter, 0), locked.get(letter, 0), False
        elif letter in (SHMEM, SHMEM_TWICE):
            key = (p.attrs.obj, p.attrs.pgoff)
            if key in outside_cached or p.attrs.obj in disk:
                continue
            n, lo, judged = cached.get(key, 0), locked.get(key, 0), key not in shared
        else:  # A, Al: a private anonymous page of this mapping alone
            n, lo, judged = 1, int(p.attrs.lo), True
        if not lo:
            must_not |= 1 << i
        elif n == 1 and judged:
            must |= 1 << i
    return must, must_not


def _alone(state: State) -> tuple[int, int] | None:
    """`expected` of a process that has not forked (or whose children are gone) and maps
    nothing outside the arena, without counting mappings over processes: its arena
    pages are every mapping of their frames. None if a frame fork shared is left."""
    locked = locked_cache_pages([state])
    large = _large_unlocked([state])
    disk = _disk_locked([state])
    must = must_not = 0
    for i, p in enumerate(state.pages):
        if p is None:
            continue
        letter = p.state
        if letter in (ABSENT, ZERO, GUARD):
            continue
        if letter[-1] == LARGE:
            must_not |= large << i
            continue
        if letter[0] == ANON:
            if p.attrs.lo:
                must |= 1 << i
            else:
                must_not |= 1 << i
        elif letter[0] == SHARED_ANON:
            return None
        elif p.attrs.obj not in disk:
            key = (p.attrs.obj, p.attrs.pgoff)
            if key not in locked:
                must_not |= 1 << i
            elif p.attrs.lo and letter == SHMEM and key not in state.lock_shared:
                must |= 1 << i  # mapped once (F, not f), by this locked VMA
    return must, must_not


def _disk_locked(states: list[State]) -> set[int]:
    """The tmpfiles whose pages are not judged: a locked VMA of some process maps a page
    of the file (a large page-cache folio may hold that page and others), or a VMA
    outside the arena maps it (its lock flags are not followed)."""
    disk = states[0].disk
    if not disk:
        return set()
    found = {v.obj for s in states for v in s.outside_shmem_vmas if v.obj in disk}
    for s in states:
        found.update(p.attrs.obj for p in s.pages
                     if p is not None and p.attrs.lo and p.attrs.obj in disk)
    return found


def _large_unlocked(states: list[State]) -> int:
    """1 where no page of any large folio can have a locked mapping: no large-folio page
    of any process lies in a locked VMA, and no process maps anything outside the arena
    (where a locked VMA may map part of a folio). 0 otherwise: which pages share a folio
    is not kept, and a folio partly in a locked VMA may or may not be mlocked."""
    for s in states:
        if s.outside_mapped or s.outside_frames:
            return 0
        for p in s.pages:
            if p is not None and p.attrs.lo and p.state[-1] == LARGE:
                return 0
    return 1


def _frame(letter: str, obj: int, pgoff: int) -> object:
    """What identifies a page's frame over the processes: a shared anonymous frame's
    letter, a page cache page's (object, offset); None for a page of one mapping."""
    if letter[0] == SHARED_ANON:
        return letter
    if letter in (SHMEM, SHMEM_TWICE):
        return (obj, pgoff)
    return None


def cells(state: State) -> str:
    """`expected` as one letter per arena page: `M` must be mlocked, `u` must not be,
    `-` not judged (the C reproducer's check, the tables)."""
    must, must_not = expected(state)
    return "".join("M" if must >> i & 1 else "u" if must_not >> i & 1 else "-"
                   for i in range(len(state.pages)))
