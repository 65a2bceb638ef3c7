"""Both sides normalised to the same per-page view, so they compare letter by letter.

The model knows pages; the kernel shows VMAs and pagemap words. Each becomes a
tuple of `PageView`, one per arena page, and `render` prints either as runs of
equal pages (`@0-3 rw-p lo AAZ.`), so expected and observed read alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.model.state import Page, prot_text
from fuzzer.prog import ARENA
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
    return tuple(
        None
        if p is None
        else PageView(prot_text(p.attrs.prot), p.attrs.shared, p.attrs.lo, p.attrs.lf, p.state[0],
                      p.attrs.dc, p.attrs.wf, p.attrs.sl)
        for p in pages
    )


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
    return [v for v in snap.vmas if ARENA.overlaps(v.start, v.end)]


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
