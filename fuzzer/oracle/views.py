"""Both sides normalised to the same per-page view, so they compare letter by letter.

The model knows pages; the kernel shows VMAs and pagemap words. Each becomes a
tuple of `PageView`, one per arena page, and `render` prints either as runs of
equal pages (`@0-3 rw-p lo AAZ.`), so expected and observed read alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.model.pmd import HUGE
from fuzzer.model.state import Page, prot_text
from fuzzer.prog import ARENA
from fuzzer.prog.arena import PMD_PAGES
from fuzzer.prog.syscalls import PAGE
from fuzzer.snapshot.parse import (
    PM_EXCLUSIVE,
    PM_FILE,
    PM_GUARD,
    PM_PFN_MASK,
    PM_PRESENT,
    Snapshot,
    Vma,
)

PRESENCE_NAMES = {
    ".": "absent",
    "Z": "zero-page",
    "A": "anonymous",
    "a": "shared anonymous",
    "F": "shmem",
    "f": "shared shmem",
    "G": "guard",
}


@dataclass(frozen=True, slots=True)
class PageView:
    prot: str  # "rw-"
    shared: bool
    lo: bool
    lf: bool
    presence: str  # one letter, see PRESENCE_NAMES
    dc: bool = False  # VM_DONTCOPY (MADV_DONTFORK)
    wf: bool = False  # VM_WIPEONFORK
    sl: bool = False  # VM_SEALED (mseal)

    def flags_text(self) -> str:
        """The VMA flags a run shows: lock flags, fork flags, the seal (`lo lf dc wf sl`)."""
        flags = (("lo", self.lo), ("lf", self.lf), ("dc", self.dc), ("wf", self.wf),
                 ("sl", self.sl))
        return " ".join(f for f, on in flags if on)


View = tuple[PageView | None, ...]


def model_view(pages: list[Page | None]) -> View:
    """Each page's view, from a cache keyed on the Page object (frozen, and kept alive
    by the cache, so its id is not reused while it is there): most pages are the same
    objects from step to step. The views are interned (`_interned`), so that equal
    pages of both sides are mostly the same objects and compare at once."""
    out: list[PageView | None] = []
    for p in pages:
        if p is None:
            out.append(None)
            continue
        hit = _BY_PAGE.get(id(p))
        if hit is not None and hit[0] is p:
            out.append(hit[1])
            continue
        a = p.attrs
        view = _interned(prot_text(a.prot), a.shared, a.lo, a.lf, p.state[0], a.dc, a.wf, a.sl)
        if len(_BY_PAGE) >= _CACHE_MAX:
            _BY_PAGE.clear()
        _BY_PAGE[id(p)] = (p, view)
        out.append(view)
    return tuple(out)


def pmd_view(view: View, pmds: list[str]) -> View:
    """`view` with the pages of each region a PMD maps ("H", model/pmd.py) showing the
    presence of the region's first page: pagemap_pmd_range computes PM_MMAP_EXCLUSIVE
    once for the PMD, from its first page's mapcount (§22), where the model keeps each
    page's own (which smaps' Pss still counts)."""
    out = list(view)
    for r, kind in enumerate(pmds):
        start = r * PMD_PAGES
        head = view[start]
        if kind != HUGE or head is None:
            continue
        for i in range(start, start + PMD_PAGES):
            p = out[i]
            if p is not None and p.presence != head.presence:
                out[i] = _interned(p.prot, p.shared, p.lo, p.lf, head.presence, p.dc, p.wf, p.sl)
    return tuple(out)


def model_view_full(pages: list[Page | None]) -> View:
    """model_view without the caches: a new PageView per page (the reference the tests
    hold model_view to)."""
    return tuple(
        None
        if p is None
        else PageView(prot_text(p.attrs.prot), p.attrs.shared, p.attrs.lo, p.attrs.lf, p.state[0],
                      p.attrs.dc, p.attrs.wf, p.attrs.sl)
        for p in pages
    )


_CACHE_MAX = 8192
_BY_PAGE: dict[int, tuple[Page, PageView]] = {}  # id(page) -> (page, its view)
_VIEWS: dict[tuple[str, bool, bool, bool, str, bool, bool, bool], PageView] = {}


def _interned(prot: str, shared: bool, lo: bool, lf: bool, presence: str, dc: bool, wf: bool,
              sl: bool) -> PageView:
    """The one PageView with these fields (PageView is frozen: sharing it is safe)."""
    key = (prot, shared, lo, lf, presence, dc, wf, sl)
    view = _VIEWS.get(key)
    if view is None:
        if len(_VIEWS) >= _CACHE_MAX:
            _VIEWS.clear()
        view = _VIEWS[key] = PageView(prot, shared, lo, lf, presence, dc, wf, sl)
    return view


def presence(word: int, zero_pfn: int) -> str:
    if not word & PM_PRESENT:
        return "G" if word & PM_GUARD else "."
    if zero_pfn and word & PM_PFN_MASK == zero_pfn:
        return "Z"
    exclusive = bool(word & PM_EXCLUSIVE)
    if word & PM_FILE:
        return "F" if exclusive else "f"
    if not exclusive and not zero_pfn:
        return "Z"  # no PFNs to go by: without fork, a non-exclusive anon page is the zero page
    return "A" if exclusive else "a"


def model_presence(pages: list[Page | None]) -> str:
    """The model's presence letters alone, unmapped pages as '.'."""
    return "".join("." if p is None else p.state[0] for p in pages)


def kernel_presence(words: tuple[int, ...], zero_pfn: int) -> str:
    """pagemap's presence letters alone (the cheap part of a snapshot)."""
    return "".join(presence(w, zero_pfn) for w in words)


def arena_vmas(snap: Snapshot) -> list[Vma]:
    # ARENA.overlaps spelled out: Arena is interpreted, and this runs for every VMA
    base, end = ARENA.base, ARENA.end
    return [v for v in snap.vmas if v.end > base and v.start < end]


def vma_of_pages(snap: Snapshot) -> list[Vma | None]:
    """The VMA that holds each arena page, or None."""
    out: list[Vma | None] = [None] * ARENA.pages
    for v in arena_vmas(snap):
        first = max(0, (v.start - ARENA.base) // PAGE)
        last = min(ARENA.pages, (v.end - ARENA.base) // PAGE)
        for i in range(first, last):
            out[i] = v
    return out


def kernel_view(snap: Snapshot) -> View:
    """VMA by VMA: its attributes once, one interned view per presence letter."""
    words, zero_pfn = snap.pagemap, snap.zero_pfn
    if len(words) != ARENA.pages:
        raise ValueError(f"pagemap: {len(words)} words for {ARENA.pages} arena pages")
    out: list[PageView | None] = [None] * ARENA.pages
    for v in arena_vmas(snap):
        first = max(0, (v.start - ARENA.base) // PAGE)
        last = min(ARENA.pages, (v.end - ARENA.base) // PAGE)
        prot, shared, lo, lf = v.perms[:3], v.perms[3] == "s", v.lo, v.lf
        dc, wf, sl = "dc" in v.flags, "wf" in v.flags, "sl" in v.flags
        by_letter: dict[str, PageView] = {}
        for i in range(first, last):
            letter = presence(words[i], zero_pfn)
            view = by_letter.get(letter)
            if view is None:
                view = by_letter[letter] = _interned(prot, shared, lo, lf, letter, dc, wf, sl)
            out[i] = view
    return tuple(out)


def kernel_view_full(snap: Snapshot) -> View:
    """kernel_view page by page, a new PageView each (the reference the tests hold
    kernel_view to)."""
    return tuple(
        None
        if v is None
        else PageView(v.perms[:3], v.perms[3] == "s", v.lo, v.lf, presence(w, snap.zero_pfn),
                      "dc" in v.flags, "wf" in v.flags, "sl" in v.flags)
        for v, w in zip(vma_of_pages(snap), snap.pagemap, strict=True)
    )


def render(view: View) -> str:
    """Runs of equal pages: `@0-3 rw-p lo AAZ.; @4-5 rw-p dc wf A.; @6 r--s F`."""
    runs: list[str] = []
    i = 0
    while i < len(view):
        j = i
        while j + 1 < len(view) and _same(view[i], view[j + 1]):
            j += 1
        first = view[i]
        if first is not None:
            where = f"@{i}" if i == j else f"@{i}-{j}"
            kind = "s" if first.shared else "p"
            flags = first.flags_text()
            letters = "".join(p.presence for p in view[i : j + 1] if p is not None)
            runs.append(" ".join(x for x in (where, first.prot + kind, flags, letters) if x))
        i = j + 1
    return "; ".join(runs) if runs else "(arena empty)"


def _same(a: PageView | None, b: PageView | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.prot, a.shared, a.lo, a.lf, a.dc, a.wf, a.sl) == \
        (b.prot, b.shared, b.lo, b.lf, b.dc, b.wf, b.sl)
