"""The syscall table: names, numbers, argument kinds and every flag constant.

This is the one place constants live (x86-64 values). Everything else, the
model included, takes them from here; `tests/test_syscalls.py` checks them
against Python's `mmap` module and the C headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

PAGE = 4096
U64 = (1 << 64) - 1

# Errno values (x86-64, asm-generic).
EPERM, ENOMEM, EACCES, EFAULT, EEXIST, EINVAL = 1, 12, 13, 14, 17, 22
EBADF, EAGAIN, EOVERFLOW, EOPNOTSUPP = 9, 11, 75, 95
ERRNO_NAMES = {
    EPERM: "EPERM",
    EBADF: "EBADF",
    EAGAIN: "EAGAIN",
    ENOMEM: "ENOMEM",
    EACCES: "EACCES",
    EFAULT: "EFAULT",
    EEXIST: "EEXIST",
    EINVAL: "EINVAL",
    EOVERFLOW: "EOVERFLOW",
    EOPNOTSUPP: "EOPNOTSUPP",
}

SIGBUS, SIGSEGV = 7, 11
SEGV_MAPERR, SEGV_ACCERR = 1, 2
SIGNAL_NAMES = {SIGBUS: "SIGBUS", SIGSEGV: "SIGSEGV"}

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM = 0, 1, 2, 4, 8
PROT_GROWSDOWN, PROT_GROWSUP = 0x01000000, 0x02000000

MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE = 0x01, 0x02, 0x03, 0x0F
MAP_DROPPABLE = 0x08  # a mapping type (6.11+); not named in older headers
MAP_FIXED, MAP_ANONYMOUS, MAP_32BIT, MAP_GROWSDOWN = 0x10, 0x20, 0x40, 0x100
MAP_DENYWRITE, MAP_EXECUTABLE, MAP_LOCKED = 0x800, 0x1000, 0x2000
MAP_NORESERVE, MAP_POPULATE, MAP_NONBLOCK = 0x4000, 0x8000, 0x10000
MAP_STACK, MAP_HUGETLB, MAP_FIXED_NOREPLACE = 0x20000, 0x40000, 0x100000

MLOCK_ONFAULT = 0x01

# Flag names in the order they are printed (the mapping type always first).
PROT_FLAGS = {"PROT_READ": PROT_READ, "PROT_WRITE": PROT_WRITE, "PROT_EXEC": PROT_EXEC,
              "PROT_SEM": PROT_SEM, "PROT_GROWSDOWN": PROT_GROWSDOWN,
              "PROT_GROWSUP": PROT_GROWSUP}
MAP_TYPES = {"MAP_SHARED": MAP_SHARED, "MAP_PRIVATE": MAP_PRIVATE,
             "MAP_SHARED_VALIDATE": MAP_SHARED_VALIDATE}
MAP_FLAGS = {"MAP_ANONYMOUS": MAP_ANONYMOUS, "MAP_FIXED": MAP_FIXED,
             "MAP_FIXED_NOREPLACE": MAP_FIXED_NOREPLACE, "MAP_POPULATE": MAP_POPULATE,
             "MAP_LOCKED": MAP_LOCKED, "MAP_NORESERVE": MAP_NORESERVE,
             "MAP_NONBLOCK": MAP_NONBLOCK, "MAP_GROWSDOWN": MAP_GROWSDOWN,
             "MAP_STACK": MAP_STACK, "MAP_HUGETLB": MAP_HUGETLB,
             "MAP_DENYWRITE": MAP_DENYWRITE, "MAP_EXECUTABLE": MAP_EXECUTABLE,
             "MAP_32BIT": MAP_32BIT}
MLOCK_FLAGS = {"MLOCK_ONFAULT": MLOCK_ONFAULT}
TOUCH_MODES = {"read": 0, "write": 1}


class Kind(Enum):
    """What an argument means; decides how it is printed, parsed and generated."""

    ADDR = "addr"  # arena byte offset; printed @page or @page+0xoff
    LEN = "len"  # byte count; printed Np, Np+B, B or 0x... for wrapping lengths
    PROT = "prot"
    MAP = "map"
    MLOCK = "mlock"
    TOUCH = "touch"
    INT = "int"  # plain signed integer (fd, offset)


@dataclass(frozen=True)
class Syscall:
    name: str
    nr: int  # x86-64 number; negative for pseudo-calls the executor performs itself
    args: tuple[tuple[str, Kind], ...]

    @property
    def is_pseudo(self) -> bool:
        return self.nr < 0


TOUCH_NR = -1
SYSCALLS: dict[str, Syscall] = {
    s.name: s
    for s in (
        Syscall("mmap", 9, (("addr", Kind.ADDR), ("len", Kind.LEN), ("prot", Kind.PROT),
                            ("flags", Kind.MAP), ("fd", Kind.INT), ("off", Kind.INT))),
        Syscall("munmap", 11, (("addr", Kind.ADDR), ("len", Kind.LEN))),
        Syscall("mprotect", 10, (("addr", Kind.ADDR), ("len", Kind.LEN), ("prot", Kind.PROT))),
        Syscall("mlock", 149, (("addr", Kind.ADDR), ("len", Kind.LEN))),
        Syscall("munlock", 150, (("addr", Kind.ADDR), ("len", Kind.LEN))),
        Syscall("mlock2", 325, (("addr", Kind.ADDR), ("len", Kind.LEN),
                                ("flags", Kind.MLOCK))),
        Syscall("touch", TOUCH_NR, (("addr", Kind.ADDR), ("mode", Kind.TOUCH))),
    )
}
BY_NR = {s.nr: s for s in SYSCALLS.values()}

# The executor's checkpoint after a touch: a syscall no program call uses.
SYS_GETPPID = 110
SYS_EXIT_GROUP = 231


def errno_name(err: int) -> str:
    return ERRNO_NAMES.get(err, f"E{err}")


def signal_name(sig: int) -> str:
    return SIGNAL_NAMES.get(sig, f"SIG{sig}")
