"""Shared pieces of the model's transitions: results, and what happens to pages.

Faults, population (`populate_vma_page_range`), fault-around and unmapping
are used by several calls; each call family lives in its own module
(`calls.py`, `madvise.py`, `mremap.py`, `mlockall.py`) and builds on these.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.model.state import ABSENT, ANON, SHMEM, ZERO, Page, State
from fuzzer.prog.program import ARENA_BASE, ARENA_PAGES
from fuzzer.prog.syscalls import (
    PAGE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    U64,
)

TASK_SIZE = (1 << 47) - PAGE
RWX = PROT_READ | PROT_WRITE | PROT_EXEC
OUTSIDE = -(1 << 70)  # mmap result: "an address the kernel chose, outside the arena"
FAULT_AROUND_PAGES = 16


class Unsupported(ValueError):
    """A call whose semantics this model does not cover yet (never generated)."""


@dataclass(frozen=True, slots=True)
class Prediction:
    ret: int | None = None  # value, or -errno; None for a touch
    signal: tuple[int, int] | None = None  # (signo, si_code) raised by a touch


def ok(value: int = 0) -> Prediction:
    return Prediction(ret=value)


def err(errno: int) -> Prediction:
    return Prediction(ret=-errno)


# ------------------------------------------------------------ page helpers


def wraps(addr: int, length: int) -> bool:
    """Whether [addr, addr+length) wraps past 2**64 at the arena's real address."""
    return ARENA_BASE + addr + length > U64


def arena_pages(start: int, length: int) -> range:
    """Arena page indexes of [start, start+length), both page aligned."""
    return range(start // PAGE, min((start + length) // PAGE, ARENA_PAGES))


def fault(state: State, idx: int, write: bool) -> None:
    """A fault at page idx that the VMA permits (handle_mm_fault)."""
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    if not a.shared:
        if write:
            state.pages[idx] = Page(a, ANON)
        elif page.state == ABSENT:
            state.pages[idx] = Page(a, ZERO)  # do_anonymous_page maps the zero page
        return
    if page.state != ABSENT:
        return  # the PTE is there: no fault is taken, so no fault-around either
    cached = state.shmem.setdefault(a.obj, set())
    cached.add(a.pgoff)  # shmem_fault allocates a hole
    state.pages[idx] = Page(a, SHMEM)
    if not write:
        fault_around(state, idx)


def fault_around(state: State, idx: int) -> None:
    """do_fault_around: map already-cached pages of the same VMA in the 64 KiB window."""
    page = state.pages[idx]
    assert page is not None
    a = page.attrs
    lo = idx - idx % FAULT_AROUND_PAGES
    for j in range(lo, lo + FAULT_AROUND_PAGES):
        other = state.pages[j]
        if other is None or other.state != ABSENT:
            continue
        b = other.attrs
        same_vma = b.obj == a.obj and b.pgoff - a.pgoff == j - idx and b.prot == a.prot
        same_vma = same_vma and (b.lo, b.lf, b.dc, b.wf) == (a.lo, a.lf, a.dc, a.wf)
        same_vma = same_vma and contiguous(state, idx, j)
        if same_vma and b.pgoff in state.shmem.get(a.obj, ()):
            state.pages[j] = Page(b, SHMEM)


def contiguous(state: State, i: int, j: int) -> bool:
    a = state.pages[i]
    assert a is not None
    step_ = 1 if j > i else -1
    for k in range(i, j, step_):
        p = state.pages[k + step_]
        if p is None or p.attrs.obj != a.attrs.obj or p.attrs.prot != a.attrs.prot:
            return False
    return True


def populate(state: State, pages: range, ignore_errors: bool) -> bool:
    """populate_vma_page_range over pages in order; False if it stopped on an error.

    Lock-on-fault pages are skipped. A PROT_NONE page fails with EFAULT: with
    ignore_errors the walk goes on, otherwise it stops there.
    """
    for idx in pages:
        page = state.pages[idx]
        if page is None:
            continue  # __mm_populate only walks VMAs that exist
        a = page.attrs
        if a.lf:
            continue
        if not a.prot & RWX:
            if ignore_errors:
                continue
            return False
        # Private writable VMAs take write faults (break COW); the rest read faults.
        fault(state, idx, write=bool(a.prot & PROT_WRITE) and not a.shared)
    return True


def unmap(state: State, pages: range) -> None:
    for idx in pages:
        state.pages[idx] = None
    state.drop_unmapped_objects()


