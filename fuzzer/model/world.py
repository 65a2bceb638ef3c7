"""Processes (docs/SEMANTICS.md §8): the model of a program that forks.

A `World` is one `State` per process, numbered as programs number them: p0
from the start, the n-th fork() creates pn, exit() ends one (its slot becomes
None). A call of one process goes to `calls.step` on that process's State;
fork and exit are transitions of the world, made here. After every call,
`pages.mark_mapped_twice` works out, over every process (`State.processes`),
what the processes see of one another:

- An anonymous page fork left mapped in two processes is *shared anonymous*:
  its presence is `a` followed by a frame number (`a7`), in both processes,
  and pagemap shows it without the exclusive bit. It stays shared while two
  mappings of that frame remain; a write fault gives the writer a fresh `A`
  page (`pages.fault`), and once only one mapping is left, the last one is
  exclusive `A` again (munmap, DONTNEED, a copy-on-write, or exit elsewhere).
  The frame number travels with the letter, through mprotect, mlock and
  mremap moves, so the model needs no other page identity. A frame shared
  from a lazily freed clean page (`Al`) is `aNl`: it is `Al` again once one
  mapping is left (docs/SEMANTICS.md §16).
- A shmem or memfd page mapped at more than one place over all processes is
  `f`.

The page cache of shmem and memfd objects is one for the world: a child's
State refers to the very same dicts as its parent's. Object ids a process
hands out after a fork are kept apart by giving each process its own range.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fuzzer.model import madvise as madvise_mod
from fuzzer.model import pmadvise, pmd, vmas
from fuzzer.model.calls import SUPPORTED as PROCESS_CALLS
from fuzzer.model.calls import covers as process_covers
from fuzzer.model.calls import step as process_step
from fuzzer.model.pages import NEW_PID, Prediction, locked_cache_pages, mark_mapped_twice
from fuzzer.model.state import (
    ABSENT,
    ANON,
    SHARED_ANON,
    OutsideFile,
    Page,
    State,
)
from fuzzer.prog.program import MAX_PROCS, Call

WORLD_CALLS = frozenset({"fork", "exit", "process_madvise"})
SUPPORTED = PROCESS_CALLS | WORLD_CALLS
OBJ_RANGE = 1 << 20  # object ids per process: process n hands out n * OBJ_RANGE + k


@dataclass(slots=True)
class World:
    procs: list[State | None]
    next_frame: int = 1
    children: int = 0  # forks so far: the n-th created process n, the last child
    # The page-cache pages (object, offset) an exit munlocked, whose munlock waits in its
    # CPU's batch until the next call's stop drains it (`step`, §20)
    exit_munlocked: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    def start(cls, state: State) -> World:
        return cls([state] + [None] * (MAX_PROCS - 1))

    @property
    def forked(self) -> bool:
        """Whether processes can see one another (a fork happened)."""
        return self.children > 0

    def live(self) -> list[tuple[int, State]]:
        return [(n, s) for n, s in enumerate(self.procs) if s is not None]

    def proc(self, n: int) -> State:
        state = self.procs[n]
        assert state is not None, f"p{n} is not running (programs are checked for this)"
        return state


def covers(call: Call) -> bool:
    """Whether the model predicts this call (statically)."""
    if call.name == "process_madvise":
        return call.arg("advice") & 0xFFFF_FFFF not in madvise_mod.UNSUPPORTED_ADVICE
    return call.name in WORLD_CALLS or process_covers(call)


def step(world: World, call: Call) -> Prediction:
    """One call of one process; changes the world in place."""
    if call.name == "fork":
        prediction = _fork(world, call.proc)
    elif call.name == "exit":
        world.exit_munlocked |= locked_cache_pages([world.proc(call.proc)])
        world.proc(call.proc).peers = []
        world.procs[call.proc] = None
        _link(world)
        if world.live():  # exit_mmap and closing its descriptors may free objects
            world.live()[0][1].drop_unmapped_objects()
        prediction = Prediction()
    elif call.name == "process_madvise":
        prediction = _process_madvise(world, call)
    else:
        prediction = process_step(world.proc(call.proc), call)
    # The call after an exit (or exits in a row), on the same CPU: the exit's munlocks
    # wait in its batch (`munlock_folio`; an exit has no stop to drain it), and a fault in
    # a VMA locked before (mlock_fixup skips it, and with it mlock_vma_pages_range's
    # lru_add_drain) queues its `mlock_folio` behind them: the drain clears the flag and
    # leaves it clear, as after a MAP_FIXED mmap over a locked mapping. So the exit's
    # pages are that call's `held` (§20; row shmem-exit-then-fault-in-locked-vma).
    held = None
    if call.name != "exit" and world.exit_munlocked:
        held, world.exit_munlocked = world.exit_munlocked, set()
    if (call.name in WORLD_CALLS or held) and world.live():
        # what a fork shared or an exit let go shows in every process
        mark_mapped_twice(world.live()[0][1], held)
    return prediction


def _process_madvise(world: World, call: Call) -> Prediction:
    """madvise on the address space of process `target` (§18), then what follows every
    call of a process (calls.step), on that process."""
    target_no = call.arg("target")
    target = world.proc(target_no)
    args = call.args
    prediction = pmadvise.process_madvise(
        target, target_no == call.proc, [(args[1], args[2]), (args[3], args[4])],
        call.arg("vlen"), call.arg("advice"), call.arg("flags"))
    vmas.track(target)
    pmd.settle(target)
    mark_mapped_twice(target)
    target.forget_clean()
    return prediction


def _fork(world: World, parent_no: int) -> Prediction:
    """dup_mmap: the child's VMAs, lock flags and page tables (docs/SEMANTICS.md §8)."""
    parent = world.proc(parent_no)
    world.children += 1
    n = world.children
    child = parent.copy()
    child.shmem, child.shmem_size = parent.shmem, parent.shmem_size  # one page cache
    child.shmem_dirty = parent.shmem_dirty
    child.lock_shared = parent.lock_shared
    child.disk = parent.disk
    child.next_obj = max(child.next_obj, n * OBJ_RANGE)
    child.def_lo = child.def_lf = False  # VM_INIT_DEF_MASK: MCL_FUTURE is not inherited
    child.outside_locked = 0
    # dup_mmap skips VM_DONTCOPY VMAs outside the arena too, and a VM_WIPEONFORK one
    # starts empty there: the child shares none of their frames.
    child.outside_mapped = parent.outside_mapped - parent.outside_dontfork
    child.outside_dontfork = 0
    child.outside_frames = [(f, a) for f, a in parent.outside_frames if not (a.dc or a.wf)]
    child.outside_shmem_vmas = _copied_outside(parent)
    child.rest = [replace(v, lo=False, lf=False) for v in parent.rest]
    # anon_vma_fork runs per VMA: every child VMA with an anon_vma gets one of its own,
    # even two that shared one in the parent (a split), so they never merge again
    renamed: dict[tuple[int, int], int] = {}  # parent (VMA, anon_vma) -> the child's
    # anon_vma (chained to the parent's: negative)
    for i, page in enumerate(parent.pages):
        if page is None:
            continue
        a = page.attrs
        if a.dc:  # MADV_DONTFORK: the child has no such VMA
            child.pages[i] = None
            child.vmas[i] = None
            continue
        vid, anon, acct = vmas.slot(parent, i)
        if a.wf:
            anon = 0  # dup_mmap: a VM_WIPEONFORK child starts without an anon_vma
        if anon:
            anon = renamed.setdefault((vid, anon), -vmas.new_id(parent))
        child.vmas[i] = (vid, anon, acct)
        # vma_needs_copy: page tables only for a VMA with an anon_vma or VM_MAYBE_GUARD
        # (a shared VMA without one refaults from the page cache), never for VM_WIPEONFORK.
        keep = not a.wf and (a.gu or (anon != 0 and not a.shared))
        letter = page.state if keep else ABSENT
        if keep and page.state[0] == ANON:
            # a lazily freed clean page stays so in both: copy_present_ptes copies the
            # clean PTE, and every write to the shared frame copies it first (§16)
            letter = f"{SHARED_ANON}{world.next_frame}{page.state[1:]}"
            world.next_frame += 1
            parent.pages[i] = Page(page.attrs, letter)
        child.pages[i] = Page(a.with_lock(False, False), letter)
    child.next_id = parent.next_id
    child.vmas_seen = list(child.pages)
    parent.vmas_seen = list(parent.pages)
    pmd.forked(parent, child)
    world.procs[n] = child
    _link(world)
    return Prediction(NEW_PID)


def _copied_outside(parent: State) -> list[OutsideFile]:
    """The child's file VMAs outside the arena right after fork: all but VM_DONTCOPY
    ones (dup_mmap skips them). vma_needs_copy copies the page tables of a private file
    VMA with an anon_vma and of any with VM_MAYBE_GUARD (copy_present_pte maps each
    cached page once more, copy_nonpresent_pte copies each guard marker); another shared
    VMA, or a private one without an anon_vma, starts with no page mapped."""
    out = []
    for v in parent.outside_shmem_vmas:
        if v.attrs.dc:
            continue
        copied = v.attrs.gu or (v.anon and not v.attrs.shared)
        out.append(OutsideFile(v.obj, v.first, v.count, v.attrs, v.anon,
                               set(v.mapped) if copied else set(),
                               set(v.copies) if copied else set(),
                               set(v.guards) if copied else set()))
    return out


def _link(world: World) -> None:
    peers = [s for _, s in world.live()]
    for s in peers:
        s.peers = peers


__all__ = ["SUPPORTED", "World", "covers", "step"]
