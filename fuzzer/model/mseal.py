"""mseal and what a seal refuses: docs/SEMANTICS.md §14, following mm/mseal.c (6.18).

`mseal` sets VM_SEALED on every VMA of a range without holes (splitting and
merging them like any flag change, which `vmas.track` follows). A sealed VMA
refuses, with EPERM: unmapping (munmap, mmap MAP_FIXED over it, mremap's
shrink and its target), mremap of it, mprotect, and the madvise that discard
the contents of a private anonymous VMA the caller cannot write. Each caller
checks where its kernel function does; this module holds the checks they share.
"""

from __future__ import annotations

from fuzzer.model import vmas
from fuzzer.model.pages import Prediction, arena_pages, checked_length, err, ok
from fuzzer.model.state import Page, State
from fuzzer.prog.syscalls import EINVAL, ENOMEM, ENOSYS, PROT_WRITE, U64


def mseal(state: State, addr: int, length: int, flags: int) -> Prediction:
    """do_mseal: argument checks, then no hole anywhere (range_contains_unmapped), then
    mseal_apply seals every VMA of the range, splitting the first and last."""
    if not state.features.mseal:
        return err(ENOSYS)  # before 6.10
    if flags & U64:
        return err(EINVAL)
    rounded = checked_length(addr, length)
    if rounded is None:
        return err(EINVAL)
    if rounded == 0:
        return ok()
    pages = arena_pages(addr, rounded)
    if any(state.pages[i] is None for i in pages):
        return err(ENOMEM)  # nothing is sealed
    for i in pages:
        page = state.pages[i]
        assert page is not None
        state.pages[i] = Page(page.attrs.with_flags({"sl": True}), page.state)
    return ok()


def unmap_refused(state: State, pages: range) -> bool:
    """vms_gather_munmap_vmas: whether a sealed VMA in `pages` refuses their unmapping.

    The first VMA is split at the range's start (if the range starts inside it and
    it is not sealed itself) before the later VMAs are checked, and a refusal does
    not undo that split: the VMA stays in two (6.18; a probe on 6.18.44 shows it).
    """
    mapped = [i for i in pages if state.pages[i] is not None]
    if not any(_sealed(state, i) for i in mapped):
        return False
    first = mapped[0]
    if not _sealed(state, first) and vmas.vma_of(state, first).start < first:
        vmas.split_at(state, first)
    return True


def discard_refused(state: State, idx: int) -> bool:
    """madvise.c can_madvise_modify, for advice that discards (is_discard): a sealed
    private anonymous VMA (vma_is_anonymous) without VM_WRITE refuses it."""
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    return a.sl and not a.obj and not a.shared and not a.prot & PROT_WRITE


def _sealed(state: State, idx: int) -> bool:
    page = state.pages[idx]
    return page is not None and page.attrs.sl


__all__ = ["discard_refused", "mseal", "unmap_refused"]
