"""What an injection may ask about a traced process: read-only, computed on demand.

`Process` is the view (`call.process`, and both sides of `on_fork`): the lock
state at one address (smaps VmFlags), RLIMIT_MEMLOCK (prlimit64 on the pid),
the effective capabilities (status CapEff), VmLck, and the MCL_FUTURE state of
its mm. The last is not in /proc (it is mm->def_flags), so `MmTracker` follows
it from the calls the kernel really ran: every mlockall and munlockall that
succeeded (after any Rewrite/Replace/Skip, extra calls included), a fresh mm
at fork and exec, a shared one after vfork or clone(CLONE_VM).
"""

from __future__ import annotations

import itertools
import resource
from dataclasses import dataclass, field
from typing import Literal

from fuzzer.prog.syscalls import MCL_FUTURE, MCL_ONFAULT, SYSCALLS
from fuzzer.snapshot.parse import Vma, parse_smaps, parse_vmlck

Lock = Literal["unlocked", "locked", "onfault"]
CAP_IPC_LOCK = 14
_MLOCKALL, _MUNLOCKALL = SYSCALLS["mlockall"].nr, SYSCALLS["munlockall"].nr


@dataclass(slots=True)
class MmTracker:
    """The MCL_FUTURE state of every traced mm, keyed through the pids that use it."""

    _mm: dict[int, int] = field(default_factory=dict)  # pid -> mm id
    _future: dict[int, Lock] = field(default_factory=dict)  # mm id -> def_flags lock
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def future(self, pid: int) -> Lock:
        return self._future.get(self._mm.get(pid, -1), "unlocked")

    def ran(self, pid: int, nr: int, args: tuple[int, ...], result: int) -> None:
        """The kernel ran syscall `nr` in `pid` with these argument registers."""
        if result != 0 or nr not in (_MLOCKALL, _MUNLOCKALL):
            return
        flags = args[0] if nr == _MLOCKALL else 0
        lock: Lock = ("unlocked" if not flags & MCL_FUTURE
                      else "onfault" if flags & MCL_ONFAULT else "locked")
        self._future[self._mm_of(pid)] = lock  # apply_mlockall_flags resets def_flags

    def forked(self, parent: int, child: int, shares_mm: bool) -> None:
        """A new process or thread: a copy of the mm has no MCL_FUTURE (VM_INIT_DEF_MASK)."""
        if shares_mm:
            self._mm[child] = self._mm_of(parent)
        else:
            self.execed(child)

    def execed(self, pid: int) -> None:
        """A new mm: exec, or a fork child's copy."""
        self._mm[pid] = next(self._ids)

    def _mm_of(self, pid: int) -> int:
        if pid not in self._mm:
            self.execed(pid)
        return self._mm[pid]


@dataclass(frozen=True, slots=True)
class Process:
    """A read-only view of one traced process; every property reads /proc (or asks the
    tracker) when it is used, so a view kept from an earlier stop stays current."""

    pid: int
    _tracker: MmTracker = field(repr=False, compare=False)

    @property
    def mcl_future(self) -> Lock:
        """The lock new mappings get: "locked" after mlockall(MCL_FUTURE), "onfault" with
        MCL_ONFAULT too, "unlocked" otherwise (and in a fork child, and after exec)."""
        return self._tracker.future(self.pid)

    @property
    def memlock(self) -> tuple[int, int]:
        """RLIMIT_MEMLOCK (soft, hard) in bytes; resource.RLIM_INFINITY for no limit."""
        return resource.prlimit(self.pid, resource.RLIMIT_MEMLOCK)

    @property
    def cap_eff(self) -> int:
        """The effective capability set (status CapEff), a bit mask."""
        return int(self._status("CapEff"), 16)

    @property
    def cap_ipc_lock(self) -> bool:
        """Whether CAP_IPC_LOCK (bit 14) is effective: RLIMIT_MEMLOCK does not apply."""
        return bool(self.cap_eff >> CAP_IPC_LOCK & 1)

    @property
    def vmlck(self) -> int:
        """Locked memory the kernel counts (status VmLck), bytes."""
        with open(f"/proc/{self.pid}/status") as f:
            return parse_vmlck(f.read())

    def lock_at(self, addr: int) -> Lock | None:
        """The lock of the VMA holding `addr` (smaps VmFlags: lo, and lf for on-fault);
        None if nothing is mapped there."""
        vma = self._vma_at(addr)
        if vma is None:
            return None
        return "unlocked" if not vma.lo else "onfault" if vma.lf else "locked"

    def flags_at(self, addr: int) -> frozenset[str] | None:
        """The smaps VmFlags of the VMA holding `addr` ("sl" for sealed, ...); None if
        nothing is mapped there."""
        vma = self._vma_at(addr)
        return None if vma is None else vma.flags

    @property
    def vmas(self) -> tuple[Vma, ...]:
        """Every VMA of the process as smaps shows it (start, end, flags, ...)."""
        with open(f"/proc/{self.pid}/smaps") as f:
            return parse_smaps(f.read())

    def _vma_at(self, addr: int) -> Vma | None:
        return next((v for v in self.vmas if v.start <= addr < v.end), None)

    def _status(self, key: str) -> str:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
        raise LookupError(f"/proc/{self.pid}/status has no {key}")
