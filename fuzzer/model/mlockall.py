"""mlockall and munlockall: docs/SEMANTICS.md §3 (mm/mlock.c), acting on the whole process.

Besides the arena they lock the executor's own VMAs (`State.rest`, taken from
the process at start) and the mappings the kernel placed outside the arena,
so VmLck stays predictable to the page. MCL_CURRENT populates the VMAs mremap
moved outside the arena too: a shmem one can map arena pages a second time, a
writable private one copies the pages it shares with another process.
Without CAP_IPC_LOCK the rlimit paths apply: EPERM under a zero
RLIMIT_MEMLOCK, ENOMEM when MCL_CURRENT would lock more than the limit (the
whole address space, total_vm, is what counts).
"""

from __future__ import annotations

from fuzzer.model.mremap import populate_outside
from fuzzer.model.pages import Prediction, err, ok, populate
from fuzzer.model.state import Page, State
from fuzzer.prog.program import ARENA_PAGES
from fuzzer.prog.syscalls import EINVAL, ENOMEM, EPERM, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT

MCL_ALL = MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT


def mlockall(state: State, flags: int) -> Prediction:
    flags &= 0xFFFF_FFFF  # SYSCALL_DEFINE1(mlockall, int, flags)
    if not flags or flags & ~MCL_ALL or flags == MCL_ONFAULT:
        return err(EINVAL)
    if not state.can_do_mlock():
        return err(EPERM)
    if flags & MCL_CURRENT and not state.cap_ipc_lock and state.total_vm() > state.limit_pages():
        return err(ENOMEM)  # checked against the whole address space; nothing changes
    _apply(state, flags)
    if flags & MCL_CURRENT:  # mm_populate(0, TASK_SIZE), MCL_ONFAULT or not
        # With ONFAULT populate skips the lf VMAs, not the ones mlock_fixup would not lock
        # (VM_DROPPABLE): those it faults in (docs/SEMANTICS.md §3, §17)
        populate(state, range(ARENA_PAGES), ignore_errors=True)
        populate_outside(state, onfault=bool(flags & MCL_ONFAULT))
    return ok()


def munlockall(state: State) -> Prediction:
    _apply(state, 0)
    return ok()


def _apply(state: State, flags: int) -> None:
    """apply_mlockall_flags: reset the default lock bits, then relock every VMA on CURRENT."""
    onfault = bool(flags & MCL_ONFAULT)
    state.def_lo = bool(flags & MCL_FUTURE)
    state.def_lf = state.def_lo and onfault
    if flags and not flags & MCL_CURRENT:
        return  # FUTURE alone leaves existing VMAs as they are
    lo = bool(flags & MCL_CURRENT)
    lf = lo and onfault
    for i, page in enumerate(state.pages):
        if page is not None and not page.attrs.dp:  # mlock_fixup skips VM_DROPPABLE
            state.pages[i] = Page(page.attrs.with_lock(lo, lf), page.state)
    for vma in state.rest:
        if vma.lockable:
            vma.lo, vma.lf = lo, lf
    state.outside_locked = state.outside_mapped - state.outside_droppable if lo else 0
