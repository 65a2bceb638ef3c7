"""One transition per call: the intended kernel semantics of SEMANTICS.md §1-5, 9.

`step(state, call)` changes `state` in place and returns the Prediction for
the call's own result. The order of the checks in each function follows the
kernel function cited beside it, because the order decides which errno wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fuzzer.model.state import ABSENT, ANON, SHMEM, ZERO, Attrs, Page, State
from fuzzer.prog.program import ARENA_BASE, ARENA_PAGES, ARENA_SIZE, Call, page_up
from fuzzer.prog.syscalls import (
    EBADF,
    EEXIST,
    EINVAL,
    ENOMEM,
    MAP_32BIT,
    MAP_ANONYMOUS,
    MAP_DROPPABLE,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    MLOCK_ONFAULT,
    PAGE,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_READ,
    PROT_SEM,
    PROT_WRITE,
    SEGV_ACCERR,
    SEGV_MAPERR,
    SIGSEGV,
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


def step(state: State, call: Call) -> Prediction:
    handler = _HANDLERS[call.name]
    return handler(state, *call.args)


# ------------------------------------------------------------ page helpers


def _wraps(addr: int, length: int) -> bool:
    """Whether [addr, addr+length) wraps past 2**64 at the arena's real address."""
    return ARENA_BASE + addr + length > U64


def _pages(start: int, length: int) -> range:
    """Arena page indexes of [start, start+length), both page aligned."""
    return range(start // PAGE, min((start + length) // PAGE, ARENA_PAGES))


def _fault(state: State, idx: int, write: bool) -> None:
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
    cached = state.shmem.setdefault(a.obj, set())
    cached.add(a.pgoff)  # shmem_fault allocates a hole
    state.pages[idx] = Page(a, SHMEM)
    if not write:
        _fault_around(state, idx)


def _fault_around(state: State, idx: int) -> None:
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
        same_vma = same_vma and (b.lo, b.lf) == (a.lo, a.lf) and _contiguous(state, idx, j)
        if same_vma and b.pgoff in state.shmem.get(a.obj, ()):
            state.pages[j] = Page(b, SHMEM)


def _contiguous(state: State, i: int, j: int) -> bool:
    a = state.pages[i]
    assert a is not None
    step_ = 1 if j > i else -1
    for k in range(i, j, step_):
        p = state.pages[k + step_]
        if p is None or p.attrs.obj != a.attrs.obj or p.attrs.prot != a.attrs.prot:
            return False
    return True


def _populate(state: State, pages: range, ignore_errors: bool) -> bool:
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
        _fault(state, idx, write=bool(a.prot & PROT_WRITE) and not a.shared)
    return True


def _unmap(state: State, pages: range) -> None:
    for idx in pages:
        state.pages[idx] = None
    state.drop_unmapped_objects()


# ------------------------------------------------------------------- calls


def mmap(
    state: State, addr: int, length: int, prot: int, flags: int, fd: int, off: int
) -> Prediction:
    if off % PAGE:
        return err(EINVAL)  # arch/x86 sys_mmap
    if not flags & MAP_ANONYMOUS:
        return err(EBADF)  # the executor has no open file descriptors
    if flags & MAP_HUGETLB:
        raise Unsupported("MAP_HUGETLB")
    if flags & MAP_TYPE == MAP_DROPPABLE:
        raise Unsupported("MAP_DROPPABLE")
    # mm/mmap.c do_mmap
    if length == 0:
        return err(EINVAL)
    if flags & MAP_FIXED_NOREPLACE:
        flags |= MAP_FIXED
    if not flags & MAP_FIXED:
        addr -= addr % PAGE  # round_hint_to_min
    length = page_up(length) & U64
    if length == 0:
        return err(ENOMEM)
    # __get_unmapped_area
    if length > TASK_SIZE:
        return err(ENOMEM)
    outside = False
    if flags & MAP_FIXED:
        if addr % PAGE:
            return err(EINVAL)
        pages = _pages(addr, length)
    else:
        pages = _pages(addr, length)
        hint_free = addr + length <= ARENA_SIZE and all(state.pages[i] is None for i in pages)
        # x86 MAP_32BIT searches below 2 GiB before it looks at the hint.
        outside = not hint_free or bool(flags & MAP_32BIT)
    if flags & MAP_FIXED_NOREPLACE and any(state.pages[i] is not None for i in pages):
        return err(EEXIST)
    mtype = flags & MAP_TYPE
    if mtype not in (MAP_SHARED, MAP_PRIVATE):
        return err(EINVAL)
    if mtype == MAP_SHARED and flags & MAP_GROWSDOWN:
        return err(EINVAL)
    if flags & MAP_GROWSDOWN:
        raise Unsupported("MAP_GROWSDOWN")
    locked = bool(flags & MAP_LOCKED)
    populate = locked or flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE
    if outside:
        state.outside_mapped += length // PAGE
        state.outside_locked += length // PAGE if locked else 0
        return ok(OUTSIDE)
    shared = mtype == MAP_SHARED
    obj = 0
    if shared:
        obj = state.next_obj
        state.next_obj += 1
    _unmap(state, pages)  # MAP_FIXED replaces whatever overlaps, as munmap would
    for n, idx in enumerate(pages):
        state.pages[idx] = Page(Attrs(shared, prot & RWX, lo=locked, obj=obj, pgoff=n))
    if shared:
        state.shmem[obj] = set()
    if populate:
        _populate(state, pages, ignore_errors=True)
    return ok(addr)


def munmap(state: State, addr: int, length: int) -> Prediction:
    # mm/vma.c do_vmi_munmap
    if addr % PAGE or length > TASK_SIZE - (ARENA_BASE + addr):
        return err(EINVAL)
    length = page_up(length)
    if length == 0:
        return err(EINVAL)
    _unmap(state, _pages(addr, length))
    return ok()


def mprotect(state: State, addr: int, length: int, prot: int) -> Prediction:
    # mm/mprotect.c do_mprotect_pkey
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    prot &= ~grows
    if grows == PROT_GROWSDOWN | PROT_GROWSUP:
        return err(EINVAL)
    if addr % PAGE:
        return err(EINVAL)
    if length == 0:
        return ok()
    length = page_up(length) & U64
    if length == 0 or _wraps(addr, length):
        return err(ENOMEM)
    if prot & ~(RWX | PROT_SEM):
        return err(EINVAL)  # arch_validate_prot
    pages = _pages(addr, length)
    first = next((i for i in pages if state.pages[i] is not None), None)
    if first is None:
        return err(ENOMEM)
    if grows:
        # No VMA here has VM_GROWSDOWN, and x86 has no VM_GROWSUP.
        if grows == PROT_GROWSDOWN or first == pages.start:
            return err(EINVAL)
        return err(ENOMEM)
    if first != pages.start:
        return err(ENOMEM)
    new = prot & RWX
    for idx in pages:
        page = state.pages[idx]
        if page is None:
            return err(ENOMEM)  # VMAs before the hole keep their new protection
        a = page.attrs
        # mprotect_fixup: a private locked VMA that becomes writable is populated.
        cow = a.lo and not a.shared and not a.prot & PROT_WRITE and new & PROT_WRITE
        state.pages[idx] = Page(Attrs(a.shared, new, a.lo, a.lf, a.obj, a.pgoff), page.state)
        if cow and not a.lf:
            _fault(state, idx, write=True)
    return ok()


def _lock_range(addr: int, length: int) -> tuple[int, int]:
    """do_mlock's rounding: start down, length up to cover start's page offset."""
    length = page_up(length + addr % PAGE) & U64
    return addr - addr % PAGE, length


def _apply_lock(state: State, start: int, length: int, lo: bool, lf: bool) -> int:
    """apply_vma_lock_flags: replace lock bits up to the first hole; 0 or -errno."""
    if _wraps(start, length):
        return -EINVAL
    if length == 0:
        return 0
    pages = _pages(start, length)
    if state.pages[pages.start] is None:
        return -ENOMEM
    for idx in pages:
        page = state.pages[idx]
        if page is None:
            return -ENOMEM
        state.pages[idx] = Page(page.attrs.with_lock(lo, lf), page.state)
    return 0


def _do_mlock(state: State, addr: int, length: int, lf: bool) -> Prediction:
    # mm/mlock.c do_mlock (as root: can_do_mlock and the rlimit always pass)
    start, length = _lock_range(addr, length)
    error = _apply_lock(state, start, length, True, lf)
    if error:
        return Prediction(ret=error)
    if not _populate(state, _pages(start, length), ignore_errors=False):
        return err(ENOMEM)  # __mlock_posix_error_return: EFAULT -> ENOMEM
    return ok()


def mlock(state: State, addr: int, length: int) -> Prediction:
    return _do_mlock(state, addr, length, lf=False)


def mlock2(state: State, addr: int, length: int, flags: int) -> Prediction:
    flags &= 0xFFFF_FFFF  # SYSCALL_DEFINE3(mlock2, ..., int, flags): the upper half is dropped
    if flags & ~MLOCK_ONFAULT:
        return err(EINVAL)
    return _do_mlock(state, addr, length, lf=bool(flags & MLOCK_ONFAULT))


def munlock(state: State, addr: int, length: int) -> Prediction:
    start, length = _lock_range(addr, length)
    return Prediction(ret=_apply_lock(state, start, length, False, False))


def touch(state: State, addr: int, mode: int) -> Prediction:
    idx = addr // PAGE
    page = state.pages[idx]
    if page is None:
        return Prediction(signal=(SIGSEGV, SEGV_MAPERR))
    write = mode == 1
    # x86: any of R, W or X makes a page readable.
    allowed = page.attrs.prot & PROT_WRITE if write else page.attrs.prot & RWX
    if not allowed:
        return Prediction(signal=(SIGSEGV, SEGV_ACCERR))
    _fault(state, idx, write)
    return Prediction()


def _not_modelled(name: str) -> Callable[..., Prediction]:
    def handler(state: State, *args: int) -> Prediction:
        raise Unsupported(name)

    return handler


_HANDLERS: dict[str, Callable[..., Prediction]] = {
    "mremap": _not_modelled("mremap"),
    "madvise": _not_modelled("madvise"),
    "mlockall": _not_modelled("mlockall"),
    "munlockall": _not_modelled("munlockall"),
    "mmap": mmap,
    "munmap": munmap,
    "mprotect": mprotect,
    "mlock": mlock,
    "mlock2": mlock2,
    "munlock": munlock,
    "touch": touch,
}

# The calls whose semantics the model covers; the generator makes only these.
SUPPORTED = frozenset(name for name, h in _HANDLERS.items() if h.__name__ != "handler")
