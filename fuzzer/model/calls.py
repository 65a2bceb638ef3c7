"""One transition per call: the intended kernel semantics of docs/SEMANTICS.md §1-5, 9.

`step(state, call)` changes `state` in place and returns the Prediction for
the call's own result. The order of the checks in each function follows the
kernel function cited beside it, because the order decides which errno wins.
"""

from __future__ import annotations

from collections.abc import Callable

from fuzzer.model import madvise as madvise_mod
from fuzzer.model import memfd, mseal, pmadvise, pmd, vmas
from fuzzer.model import mremap as mremap_mod
from fuzzer.model.mlockall import mlockall, munlockall
from fuzzer.model.pages import (
    BUS_ADRERR,
    OUTSIDE,
    TASK_SIZE,
    Prediction,
    Unsupported,
    arena_pages,
    err,
    fault,
    locked_cache_pages,
    mark_mapped_twice,
    ok,
    populate,
    unmap,
    wraps,
)
from fuzzer.model.state import ABSENT, GUARD, Attrs, Page, State
from fuzzer.prog.program import ARENA_BASE, ARENA_SIZE, Call, page_up
from fuzzer.prog.syscalls import (
    EAGAIN,
    EBADF,
    EEXIST,
    EINVAL,
    ENOMEM,
    EPERM,
    MAP_32BIT,
    MAP_ANONYMOUS,
    MAP_DROPPABLE,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_STACK,
    MAP_TYPE,
    MLOCK_ONFAULT,
    PAGE,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_SEM,
    PROT_WRITE,
    RWX,
    SEGV_ACCERR,
    SEGV_MAPERR,
    SEGV_PKUERR,
    SIGBUS,
    SIGSEGV,
    U64,
)


def step(state: State, call: Call) -> Prediction:
    # what a call that unmaps and maps in one go may munlock and mlock again (§20)
    held = locked_cache_pages(state.processes()) if call.name == "mremap" or (
        call.name == "mmap" and call.args[3] & MAP_FIXED) else None
    prediction = _HANDLERS[call.name](state, *call.args)
    # VMA identity (splits, merges, anon_vmas) follows every call, so that mremap
    # and fault-around, whose semantics depend on VMA boundaries, see them exactly.
    vmas.track(state)
    pmd.settle(state)  # the huge arena's 2 MiB regions: split, zapped, freed (§22)
    # Which shmem pages are mapped more than once, whatever call mapped or unmapped them.
    mark_mapped_twice(state, held)
    state.forget_clean()
    return prediction


# ------------------------------------------------------------------- calls


def mmap(
    state: State, addr: int, length: int, prot: int, flags: int, fd: int, off: int
) -> Prediction:
    if off % PAGE:
        return err(EINVAL)  # arch/x86 sys_mmap
    given = flags
    file = None  # the memfd object mapped, for a file mapping (FS or FP)
    if not flags & MAP_ANONYMOUS:
        file = memfd.file_of(state, fd)  # ksys_mmap_pgoff: fget
        if file is None:
            return err(EBADF)
        if memfd.huge_tlb_error(flags):
            return err(EINVAL)
    elif flags & MAP_HUGETLB:
        raise Unsupported("MAP_HUGETLB")
    pgoff = (off & U64) >> 12
    return _do_mmap(state, addr, length, prot, flags, given, file, pgoff)


def _do_mmap(state: State, addr: int, length: int, prot: int, flags: int, given: int,
             file: int | None, pgoff: int) -> Prediction:
    """mm/mmap.c do_mmap: checks, placement and the new VMA's flags (`given` is the
    caller's flags, before MAP_FIXED_NOREPLACE implied MAP_FIXED)."""
    if length == 0:
        return err(EINVAL)
    if flags & MAP_FIXED_NOREPLACE and not state.features.map_fixed_noreplace:
        flags &= ~MAP_FIXED_NOREPLACE  # before 4.17 an unknown bit: the address is a hint
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
        pages = arena_pages(addr, length)
    else:
        pages = arena_pages(addr, length)
        hint_free = addr + length <= ARENA_SIZE and all(state.pages[i] is None for i in pages)
        # x86 MAP_32BIT searches below 2 GiB before it looks at the hint.
        outside = not hint_free or bool(flags & MAP_32BIT)
    if flags & MAP_FIXED_NOREPLACE and any(state.pages[i] is not None for i in pages):
        return err(EEXIST)
    # vm_flags |= mm->def_flags: under MCL_FUTURE every new mapping is locked,
    # and with MCL_ONFAULT lock-on-fault too (MAP_LOCKED then gets lf as well).
    locked = bool(flags & MAP_LOCKED) or state.def_lo
    onfault = locked and state.def_lf
    if flags & MAP_LOCKED and not state.can_do_mlock():
        return err(EPERM)
    # mlock_future_ok: no credit for locked pages a MAP_FIXED is about to replace
    if locked and not state.cap_ipc_lock and \
            length // PAGE + state.locked_pages() > state.limit_pages():
        return err(EAGAIN)
    mtype = flags & MAP_TYPE
    if file is not None:
        error = memfd.file_mmap_error(given, pgoff, length, disk=file in state.disk)
        if error:
            return err(error)
        mtype = MAP_PRIVATE if mtype == MAP_PRIVATE else MAP_SHARED  # or SHARED_VALIDATE
    droppable = mtype == MAP_DROPPABLE and state.features.map_droppable
    if mtype not in (MAP_SHARED, MAP_PRIVATE) and not droppable:
        return err(EINVAL)  # before 6.11 MAP_DROPPABLE is an unknown type too
    # MAP_DROPPABLE (§17): neither locked (the flag, not MCL_FUTURE's VM_LOCKED) nor a stack
    if droppable and flags & MAP_LOCKED:
        return err(EINVAL)
    if (mtype == MAP_SHARED or droppable) and flags & MAP_GROWSDOWN:
        return err(EINVAL)
    if flags & MAP_GROWSDOWN:
        raise Unsupported("MAP_GROWSDOWN")
    wants_populate = locked or flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE
    shared = mtype == MAP_SHARED
    # calc_vm_flag_bits: MAP_STACK gives VM_NOHUGEPAGE (6.7+); MAP_NORESERVE gives
    # VM_NORESERVE (the test machines do not run overcommit_memory=2, which drops it)
    attrs = Attrs(shared, prot & RWX, lo=locked, lf=onfault, obj=file or 0,
                  nr=bool(flags & MAP_NORESERVE), xo=_exec_only_pkey(state, prot),
                  nh=bool(flags & MAP_STACK) and state.features.map_stack_nohugepage)
    if droppable:
        # VM_DROPPABLE with VM_NORESERVE, VM_WIPEONFORK and VM_DONTDUMP; __mmap_complete
        # clears the VM_LOCKED that MCL_FUTURE gave (after do_mmap chose to populate).
        attrs = attrs.with_flags({"dp": True, "nr": True, "wf": True, "dd": True, "lo": False,
                                  "lf": False})
    return _map(state, attrs, addr, length, pgoff, file, outside, bool(wants_populate))


def _map(state: State, attrs: Attrs, addr: int, length: int, pgoff: int, file: int | None,
         outside: bool, wants_populate: bool) -> Prediction:
    """mmap_region and __mm_populate: the new VMA, in the arena or outside it."""
    pages = arena_pages(addr, length)
    if outside:
        state.outside_mapped += length // PAGE
        state.outside_locked += length // PAGE if attrs.lo else 0
        state.outside_droppable += length // PAGE if attrs.dp else 0
        if file is not None:  # its population fills the memfd's cache
            mremap_mod.map_outside(state, attrs, pgoff, [], length // PAGE, wants_populate)
        return ok(OUTSIDE)
    if mseal.unmap_refused(state, pages):
        return err(EPERM)  # __mmap_region -> vms_gather_munmap_vmas
    unmap(state, pages)  # MAP_FIXED replaces whatever overlaps, as munmap would
    vmas.track(state)  # ... first: a new VMA, even where its pages look like the old ones
    pmd.settle(state)  # ... and page tables freed with them (free_pgtables, §22)
    if file is None and attrs.shared:  # shmem_zero_setup: a new object as large as the mapping
        attrs = attrs.with_obj(state.next_obj)
        state.next_obj += 1
        state.shmem[attrs.obj] = set()
        state.shmem_size[attrs.obj] = length // PAGE
        pgoff = 0
    elif file is None:
        pgoff = 0  # Attrs.pgoff of private anonymous pages: see vmas.pgoff
    for n, idx in enumerate(pages):
        state.pages[idx] = Page(attrs.with_pgoff(pgoff + n))
    if wants_populate:
        populate(state, pages, ignore_errors=True)
    return ok(addr)


def _exec_only_pkey(state: State, prot: int) -> bool:
    """Whether mmap or mprotect with `prot` gives the execute-only pkey: exactly PROT_EXEC
    (do_mmap; arch_override_mprotect_pkey, which also moves a VMA that has it back to
    the default pkey for any other prot) on a machine with protection keys."""
    return prot == PROT_EXEC and not state.features.exec_only_readable


def munmap(state: State, addr: int, length: int) -> Prediction:
    # mm/vma.c do_vmi_munmap
    if addr % PAGE or length > TASK_SIZE - (ARENA_BASE + addr):
        return err(EINVAL)
    length = page_up(length)
    if length == 0:
        return err(EINVAL)
    if mseal.unmap_refused(state, arena_pages(addr, length)):
        return err(EPERM)  # nothing is unmapped (docs/SEMANTICS.md §14)
    unmap(state, arena_pages(addr, length))
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
    if length == 0 or wraps(addr, length):
        return err(ENOMEM)
    if prot & ~(RWX | PROT_SEM):
        return err(EINVAL)  # arch_validate_prot
    pages = arena_pages(addr, length)
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
    new, xo = prot & RWX, _exec_only_pkey(state, prot)
    # mprotect_fixup, one VMA after the other: its protection, then, for a private locked
    # VMA that becomes writable, its population (a write fault of each page, which maps
    # an mTHP block where one lies in the VMA as it now is, §19). Up to a hole (ENOMEM)
    # or a sealed VMA (EPERM, even for the same protection): the VMAs before stay changed.
    vmas.track(state)
    error = 0
    run: list[int] = []
    for idx in pages:
        page = state.pages[idx]
        if page is None or page.attrs.sl:
            error = ENOMEM if page is None else EPERM
            break
        if run and vmas.slot(state, idx)[0] != vmas.slot(state, run[0])[0]:
            _protect_vma(state, run, new, xo)
            run = []
        run.append(idx)
    _protect_vma(state, run, new, xo)
    return err(error) if error else ok()


def _protect_vma(state: State, pages: list[int], new: int, xo: bool) -> None:
    """One VMA's part of mprotect: the new protection, then the population of a private
    locked VMA that becomes writable, which stops at a guard marker (§15)."""
    if not pages:
        return
    head = state.pages[pages[0]]
    assert head is not None
    a = head.attrs
    cow = a.lo and not a.lf and not a.shared and not a.prot & PROT_WRITE and new & PROT_WRITE
    for idx in pages:
        page = state.pages[idx]
        assert page is not None
        state.pages[idx] = Page(page.attrs.with_prot(new, xo), page.state)
    for idx in pages if cow else ():
        page = state.pages[idx]
        assert page is not None
        if page.state == GUARD:
            return
        fault(state, idx, write=True)


def _lock_range(addr: int, length: int) -> tuple[int, int]:
    """do_mlock's rounding: start down, length up to cover start's page offset."""
    length = page_up(length + addr % PAGE) & U64
    return addr - addr % PAGE, length


def _apply_lock(state: State, start: int, length: int, lo: bool, lf: bool) -> int:
    """apply_vma_lock_flags: replace lock bits up to the first hole; 0 or -errno."""
    if wraps(start, length):
        return -EINVAL
    if length == 0:
        return 0
    pages = arena_pages(start, length)
    if state.pages[pages.start] is None:
        return -ENOMEM
    for idx in pages:
        page = state.pages[idx]
        if page is None:
            return -ENOMEM
        if not page.attrs.dp:  # mlock_fixup leaves VM_DROPPABLE VMAs unlocked, silently
            state.pages[idx] = Page(page.attrs.with_lock(lo, lf), page.state)
    return 0


def _do_mlock(state: State, addr: int, length: int, lf: bool) -> Prediction:
    # mm/mlock.c do_mlock
    if not state.can_do_mlock():
        return err(EPERM)  # even for len 0
    start, length = _lock_range(addr, length)
    if not state.cap_ipc_lock:
        locked = length // PAGE + state.locked_pages()
        if locked > state.limit_pages() and not wraps(start, length):
            # count_mm_mlocked_page_nr: re-locking what is locked costs nothing
            locked -= sum(1 for i in arena_pages(start, length)
                          if (p := state.pages[i]) is not None and p.attrs.lo)
        if locked > state.limit_pages():
            return err(ENOMEM)
    error = _apply_lock(state, start, length, True, lf)
    if error:
        return Prediction(ret=error)
    if not populate(state, arena_pages(start, length), ignore_errors=False):
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


def prlimit_memlock(state: State, limit: int) -> Prediction:
    # kernel/sys.c do_prlimit: soft and hard both set to `limit`
    if limit > state.memlock_hard and not state.cap_sys_resource:
        return err(EPERM)
    state.memlock_limit = state.memlock_hard = limit
    return ok()


def drop_cap_ipc_lock(state: State) -> Prediction:
    state.cap_ipc_lock = False
    return ok()


def touch(state: State, addr: int, mode: int) -> Prediction:
    idx = addr // PAGE
    page = state.pages[idx]
    if page is None:
        return Prediction(signal=(SIGSEGV, SEGV_MAPERR))
    write = mode == 1
    # x86: any of R, W or X makes a page readable; UML's fault handler wants R or X.
    readable = RWX if state.features.write_implies_read else RWX & ~PROT_WRITE
    allowed = page.attrs.prot & PROT_WRITE if write else page.attrs.prot & readable
    if not allowed and not write and page.attrs.prot & PROT_WRITE and page.state != ABSENT:
        # UML reads a present page through the host's mapping of it, which exists once
        # the process faulted it (not after GUP populated it): not in the model.
        raise Unsupported("a read of a present PROT_WRITE-only page in User-Mode Linux")
    if page.attrs.xo:  # bad_area_access_from_pkeys: the pkey denies reads and writes alike
        return Prediction(signal=(SIGSEGV, SEGV_PKUERR))
    if not allowed:
        return Prediction(signal=(SIGSEGV, SEGV_ACCERR))
    if page.state == GUARD:  # handle_pte_marker: VM_FAULT_SIGSEGV (§15)
        return Prediction(signal=(SIGSEGV, SEGV_MAPERR))
    if not fault(state, idx, write):
        return Prediction(signal=(SIGBUS, BUS_ADRERR))  # past the shmem object's end
    return Prediction()


def process_madvise_self(state: State, target: int, addr0: int, len0: int, addr1: int,
                         len1: int, vlen: int, advice: int, flags: int) -> Prediction:
    """process_madvise of a process on itself (§18), where the model has one process
    (the world sends every process_madvise to pmadvise with the target's state)."""
    return pmadvise.process_madvise(state, True, [(addr0, len0), (addr1, len1)], vlen,
                                    advice, flags)


_HANDLERS: dict[str, Callable[..., Prediction]] = {
    "mmap": mmap,
    "munmap": munmap,
    "mprotect": mprotect,
    "mlock": mlock,
    "mlock2": mlock2,
    "munlock": munlock,
    "touch": touch,
    "mremap": mremap_mod.mremap,
    "madvise": madvise_mod.madvise,
    "mseal": mseal.mseal,
    "mlockall": mlockall,
    "munlockall": munlockall,
    "prlimit_memlock": prlimit_memlock,
    "drop_cap_ipc_lock": drop_cap_ipc_lock,
    "memfd_create": memfd.memfd_create,
    "tmpfile": memfd.tmpfile,
    "ftruncate": memfd.ftruncate,
    "close": memfd.close,
    "process_madvise": process_madvise_self,
}

# The calls whose semantics the model covers; the generator makes only these.
SUPPORTED = frozenset(
    {"mmap", "munmap", "mprotect", "mlock", "mlock2", "munlock", "touch", "mlockall",
     "munlockall", "prlimit_memlock", "drop_cap_ipc_lock", "memfd_create", "tmpfile",
     "ftruncate", "close", "mseal"}
    | ({"mremap"} if mremap_mod.MODELLED else set())
    | ({"madvise"} if madvise_mod.MODELLED else set())
)


def covers(call: Call) -> bool:
    """Whether the model predicts this call (statically: some cases are refused by state)."""
    if call.name not in SUPPORTED:
        return False
    if call.name == "madvise":
        return call.arg("advice") & 0xFFFF_FFFF not in madvise_mod.UNSUPPORTED_ADVICE
    if call.name == "mmap":
        flags = call.arg("flags")
        if not flags & MAP_ANONYMOUS:
            return True  # EBADF, or a memfd: these flags are errors the model knows
        return not flags & (MAP_HUGETLB | MAP_GROWSDOWN)
    return True
