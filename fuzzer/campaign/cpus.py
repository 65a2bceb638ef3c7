"""Which CPU each worker is pinned to: the ones asked for, else ones no other campaign holds.

A campaign holds a lock file per CPU its workers use (flock, under /run/lock/mmfuzz,
or the temporary directory where that is not writable), for as long as the
campaign or any of its workers lives: the workers inherit the descriptors, and
the kernel drops the lock with the last of them, however they end. Choosing,
a campaign takes the CPUs whose lock is free first, in order, and only when
there are more workers than free CPUs does it share the busy ones. Two
campaigns started on one host therefore land on different CPUs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


class CpuError(ValueError):
    """--cpus names no CPU, or one this process may not run on."""


def parse_cpus(text: str) -> tuple[int, ...]:
    """`1`, `0,1`, `0-3,6`: the CPUs of a list, in order, each once."""
    cpus: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            for cpu in range(int(lo), int(hi or lo) + 1):
                if cpu not in cpus:
                    cpus.append(cpu)
    except ValueError:
        raise CpuError(f"--cpus {text}: not a CPU list (e.g. 1, 0,1 or 0-3)") from None
    if not cpus or min(cpus) < 0:
        raise CpuError(f"--cpus {text}: not a CPU list (e.g. 1, 0,1 or 0-3)")
    return tuple(cpus)


def allowed() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def check_cpus(cpus: tuple[int, ...]) -> None:
    """Every CPU of `cpus` is one this process may run on; CpuError otherwise."""
    mine = allowed()
    outside = [c for c in cpus if c not in mine]
    if outside:
        raise CpuError(f"--cpus: CPU {outside[0]} is not one this process may run on "
                       f"(allowed: {','.join(map(str, mine))})")


def lock_dir() -> Path:
    for base in (Path("/run/lock"), Path(tempfile.gettempdir())):
        path = base / "mmfuzz-cpus"
        with contextlib.suppress(OSError):
            path.mkdir(mode=0o1777, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
    raise CpuError("no writable directory for the CPU locks (/run/lock, the temporary one)")


@dataclass
class Placement:
    """Each worker's CPU, and the descriptors holding the locks of the CPUs taken."""

    cpus: list[int]  # worker i -> CPU
    fds: list[int]

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())


def _try_lock(folder: Path, cpu: int) -> int | None:
    fd = os.open(folder / f"cpu{cpu}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def place(workers: int, wanted: tuple[int, ...] = ()) -> Placement:
    """CPUs for `workers` workers: among `wanted` (all allowed CPUs if empty), the
    ones no other campaign holds first; round-robin when there are fewer than workers."""
    if wanted:
        check_cpus(wanted)
    candidates = list(wanted) or allowed()
    folder = lock_dir()
    free: list[int] = []
    fds: list[int] = []
    for cpu in candidates:
        if len(free) == workers:
            break
        fd = _try_lock(folder, cpu)
        if fd is not None:
            free.append(cpu)
            fds.append(fd)
    order = free + [c for c in candidates if c not in free]
    return Placement([order[i % len(order)] for i in range(workers)], fds)
