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
ENOSYS = 38  # a syscall the kernel under test lacks (mseal before 6.10)
ESRCH = 3
ENOENT, EFBIG = 2, 27  # tmpfile without a directory to make it in; ftruncate past s_maxbytes
ERRNO_NAMES = {
    ENOENT: "ENOENT",
    EFBIG: "EFBIG",
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
    ENOSYS: "ENOSYS",
    ESRCH: "ESRCH",
}

SIGBUS, SIGSEGV = 7, 11
SEGV_MAPERR, SEGV_ACCERR, SEGV_PKUERR = 1, 2, 4
SIGNAL_NAMES = {SIGBUS: "SIGBUS", SIGSEGV: "SIGSEGV"}

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM = 0, 1, 2, 4, 8
RWX = PROT_READ | PROT_WRITE | PROT_EXEC
PROT_GROWSDOWN, PROT_GROWSUP = 0x01000000, 0x02000000

MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE = 0x01, 0x02, 0x03, 0x0F
MAP_DROPPABLE = 0x08  # a mapping type (6.11+); not named in older headers
MAP_FIXED, MAP_ANONYMOUS, MAP_32BIT, MAP_GROWSDOWN = 0x10, 0x20, 0x40, 0x100
MAP_DENYWRITE, MAP_EXECUTABLE, MAP_LOCKED = 0x800, 0x1000, 0x2000
MAP_NORESERVE, MAP_POPULATE, MAP_NONBLOCK = 0x4000, 0x8000, 0x10000
MAP_STACK, MAP_HUGETLB, MAP_FIXED_NOREPLACE = 0x20000, 0x40000, 0x100000
MAP_SYNC = 0x80000  # with MAP_SHARED_VALIDATE, on a file with FOP_MMAP_SYNC (ext4: DAX only)

MLOCK_ONFAULT = 0x01
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 0x01, 0x02, 0x04
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 0x01, 0x02, 0x04

MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED = 0, 1, 2, 3, 4
MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK = 8, 9, 10, 11
MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 12, 13, 14, 15
MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK = 16, 17, 18, 19
MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE = 20, 21, 22, 23
MADV_DONTNEED_LOCKED, MADV_COLLAPSE = 24, 25
MADV_GUARD_INSTALL, MADV_GUARD_REMOVE = 102, 103  # guard regions (6.13+)

# Flag names in the order they are printed (the mapping type always first).
PROT_FLAGS = {"PROT_READ": PROT_READ, "PROT_WRITE": PROT_WRITE, "PROT_EXEC": PROT_EXEC,
              "PROT_SEM": PROT_SEM, "PROT_GROWSDOWN": PROT_GROWSDOWN,
              "PROT_GROWSUP": PROT_GROWSUP}
MAP_TYPES = {"MAP_SHARED": MAP_SHARED, "MAP_PRIVATE": MAP_PRIVATE,
             "MAP_SHARED_VALIDATE": MAP_SHARED_VALIDATE, "MAP_DROPPABLE": MAP_DROPPABLE}
MAP_FLAGS = {"MAP_ANONYMOUS": MAP_ANONYMOUS, "MAP_FIXED": MAP_FIXED,
             "MAP_FIXED_NOREPLACE": MAP_FIXED_NOREPLACE, "MAP_POPULATE": MAP_POPULATE,
             "MAP_LOCKED": MAP_LOCKED, "MAP_NORESERVE": MAP_NORESERVE,
             "MAP_NONBLOCK": MAP_NONBLOCK, "MAP_GROWSDOWN": MAP_GROWSDOWN,
             "MAP_STACK": MAP_STACK, "MAP_HUGETLB": MAP_HUGETLB,
             "MAP_DENYWRITE": MAP_DENYWRITE, "MAP_EXECUTABLE": MAP_EXECUTABLE,
             "MAP_32BIT": MAP_32BIT}
MLOCK_FLAGS = {"MLOCK_ONFAULT": MLOCK_ONFAULT}
MCL_FLAGS = {"MCL_CURRENT": MCL_CURRENT, "MCL_FUTURE": MCL_FUTURE, "MCL_ONFAULT": MCL_ONFAULT}
MREMAP_FLAGS = {"MREMAP_MAYMOVE": MREMAP_MAYMOVE, "MREMAP_FIXED": MREMAP_FIXED,
                "MREMAP_DONTUNMAP": MREMAP_DONTUNMAP}
# Advice is a value, not a set of flags: printed by name, unknown values in decimal.
MADV_ADVICE = {
    "MADV_NORMAL": MADV_NORMAL, "MADV_RANDOM": MADV_RANDOM, "MADV_SEQUENTIAL": MADV_SEQUENTIAL,
    "MADV_WILLNEED": MADV_WILLNEED, "MADV_DONTNEED": MADV_DONTNEED, "MADV_FREE": MADV_FREE,
    "MADV_REMOVE": MADV_REMOVE, "MADV_DONTFORK": MADV_DONTFORK, "MADV_DOFORK": MADV_DOFORK,
    "MADV_MERGEABLE": MADV_MERGEABLE, "MADV_UNMERGEABLE": MADV_UNMERGEABLE,
    "MADV_HUGEPAGE": MADV_HUGEPAGE, "MADV_NOHUGEPAGE": MADV_NOHUGEPAGE,
    "MADV_DONTDUMP": MADV_DONTDUMP, "MADV_DODUMP": MADV_DODUMP,
    "MADV_WIPEONFORK": MADV_WIPEONFORK, "MADV_KEEPONFORK": MADV_KEEPONFORK,
    "MADV_COLD": MADV_COLD, "MADV_PAGEOUT": MADV_PAGEOUT,
    "MADV_POPULATE_READ": MADV_POPULATE_READ, "MADV_POPULATE_WRITE": MADV_POPULATE_WRITE,
    "MADV_DONTNEED_LOCKED": MADV_DONTNEED_LOCKED, "MADV_COLLAPSE": MADV_COLLAPSE,
    "MADV_GUARD_INSTALL": MADV_GUARD_INSTALL, "MADV_GUARD_REMOVE": MADV_GUARD_REMOVE,
}
TOUCH_MODES = {"read": 0, "write": 1}


class Kind(Enum):
    """What an argument means; decides how it is printed, parsed and generated."""

    ADDR = "addr"  # arena byte offset; printed @page or @page+0xoff
    LEN = "len"  # byte count; printed Np, Np+B, B or 0x... for wrapping lengths
    PROT = "prot"
    MAP = "map"
    MLOCK = "mlock"
    MCL = "mcl"
    MREMAP = "mremap"
    MADV = "madv"  # one advice value
    TOUCH = "touch"
    INT = "int"  # plain signed integer (fd, offset)
    PROC = "proc"  # a process of the program, printed pN (process_madvise's pidfd)


@dataclass(frozen=True)
class Syscall:
    name: str
    nr: int  # x86-64 number; negative for pseudo-calls the executor performs itself
    args: tuple[tuple[str, Kind], ...]
    # (address arg, length arg) pairs that must stay inside the arena (or wrap)
    ranges: tuple[tuple[int, int], ...] = ((0, 1),)
    # Pseudo-calls: the executor's own operation (wire op); `nr` is then the syscall
    # the supervisor sees for it (touch: the checkpoint after the access).
    op: int | None = None
    # It returns an address (the model: an arena offset), not a count or 0.
    returns_address: bool = False
    # The kernel's arguments in their registers, where they are not the program's
    # (process_madvise: the program gives two ranges, the kernel takes an iovec array).
    registers: tuple[str, ...] | None = None

    @property
    def is_pseudo(self) -> bool:
        return self.op is not None

    @property
    def register_names(self) -> tuple[str, ...]:
        """The names of the syscall's arguments, register by register (rdi, rsi, ...)."""
        return self.registers if self.registers is not None else tuple(n for n, _ in self.args)


# The executor's checkpoint after a touch: a syscall no program call uses.
SYS_GETPPID = 110
SYS_EXIT_GROUP = 231
SYS_CAPSET, SYS_PRLIMIT64, SYS_FORK = 126, 302, 57
OP_TOUCH, OP_PRLIMIT_MEMLOCK, OP_DROP_CAP_IPC_LOCK = 1000, 1002, 1003  # touch: 1000 + mode
OP_EXIT = 1004
# memfd_create: the executor supplies the name ("mmfuzz", so smaps shows
# /memfd:mmfuzz (deleted)) and no flags; the supervisor sees memfd_create itself.
SYS_MEMFD_CREATE, OP_MEMFD_CREATE = 319, 1010
# tmpfile: open(DIR, O_TMPFILE | O_RDWR, 0600), an unnamed file on a disk file system
# (ext4) in the directory the supervisor gives the executor (docs/SEMANTICS.md §21);
# the supervisor sees the openat itself.
SYS_OPENAT, OP_TMPFILE = 257, 1011
AT_FDCWD = -100
O_RDWR, O_TMPFILE = 0o2, 0o20200000  # O_TMPFILE includes O_DIRECTORY
RLIM_INFINITY = U64
SYS_MSEAL = 462  # 6.10+
# prctl (kernel/sys.c): the executor's THP setting and the probe of it (docs/SEMANTICS.md §19)
SYS_PRCTL = 157
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42
PR_THP_DISABLE_EXCEPT_ADVISED = 1 << 1  # arg3 of PR_SET_THP_DISABLE (6.18+)
SYS_PROCESS_MADVISE = 440  # 5.10+
UIO_MAXIOV = 1024  # include/uapi/linux/uio.h: more iovecs than this is EINVAL
PMADV_IOVECS = 2  # the iovecs a program gives process_madvise (more are zero-length)
SYSCALLS: dict[str, Syscall] = {
    s.name: s
    for s in (
        Syscall("mmap", 9, (("addr", Kind.ADDR), ("len", Kind.LEN), ("prot", Kind.PROT),
                            ("flags", Kind.MAP), ("fd", Kind.INT), ("off", Kind.INT)),
                returns_address=True),
        Syscall("munmap", 11, (("addr", Kind.ADDR), ("len", Kind.LEN))),
        Syscall("mprotect", 10, (("addr", Kind.ADDR), ("len", Kind.LEN), ("prot", Kind.PROT))),
        Syscall("mlock", 149, (("addr", Kind.ADDR), ("len", Kind.LEN))),
        Syscall("munlock", 150, (("addr", Kind.ADDR), ("len", Kind.LEN))),
        Syscall("mlock2", 325, (("addr", Kind.ADDR), ("len", Kind.LEN),
                                ("flags", Kind.MLOCK))),
        Syscall("mremap", 25, (("old", Kind.ADDR), ("old_len", Kind.LEN), ("new_len", Kind.LEN),
                               ("flags", Kind.MREMAP), ("new", Kind.ADDR)),
                ranges=((0, 1), (0, 2), (4, 2)), returns_address=True),
        Syscall("madvise", 28, (("addr", Kind.ADDR), ("len", Kind.LEN),
                                ("advice", Kind.MADV))),
        Syscall("mlockall", 151, (("flags", Kind.MCL),), ranges=()),
        Syscall("munlockall", 152, (), ranges=()),
        Syscall("touch", SYS_GETPPID, (("addr", Kind.ADDR), ("mode", Kind.TOUCH)), ranges=(),
                op=OP_TOUCH),
        # Privileges of the process: RLIMIT_MEMLOCK (soft = hard, bytes) and CAP_IPC_LOCK.
        Syscall("prlimit_memlock", SYS_PRLIMIT64, (("limit", Kind.LEN),), ranges=(),
                op=OP_PRLIMIT_MEMLOCK),
        Syscall("drop_cap_ipc_lock", SYS_CAPSET, (), ranges=(), op=OP_DROP_CAP_IPC_LOCK),
        # Processes: fork() makes the next process number (p1, p2, ... in program
        # order); exit() ends the calling process (exit_group).
        Syscall("fork", SYS_FORK, (), ranges=()),
        Syscall("exit", SYS_EXIT_GROUP, (), ranges=(), op=OP_EXIT),
        # memfds: the executor starts with no descriptors open, so memfd_create
        # returns the lowest free number (0 first) and programs name fds by number.
        Syscall("memfd_create", SYS_MEMFD_CREATE, (), ranges=(), op=OP_MEMFD_CREATE),
        Syscall("tmpfile", SYS_OPENAT, (), ranges=(), op=OP_TMPFILE),
        Syscall("ftruncate", 77, (("fd", Kind.INT), ("len", Kind.LEN)), ranges=()),
        Syscall("close", 3, (("fd", Kind.INT),), ranges=()),
        # mseal(addr, len, flags): flags must be 0 (mm/mseal.c do_mseal)
        Syscall("mseal", SYS_MSEAL, (("addr", Kind.ADDR), ("len", Kind.LEN), ("flags", Kind.INT))),
        # process_madvise(pidfd, iovec, vlen, advice, flags) on the address space of
        # process `target` (the executor opens its pidfd, makes the call and closes
        # it); two iovecs, of which the first `vlen` count (past two: zero-length).
        Syscall("process_madvise", SYS_PROCESS_MADVISE,
                (("target", Kind.PROC), ("addr0", Kind.ADDR), ("len0", Kind.LEN),
                 ("addr1", Kind.ADDR), ("len1", Kind.LEN), ("vlen", Kind.INT),
                 ("advice", Kind.MADV), ("flags", Kind.INT)),
                ranges=((1, 2), (3, 4)), registers=("pidfd", "vec", "vlen", "advice", "flags")),
    )
}
BY_NR = {s.nr: s for s in SYSCALLS.values() if not s.is_pseudo}


MAX_ERRNO = 4095  # include/linux/err.h: a return value in [-MAX_ERRNO, 0) is an error


def is_errno(ret: int) -> bool:
    """Whether a raw syscall return value is a negative errno (not an address or count)."""
    return -MAX_ERRNO <= ret < 0


def errno_name(err: int) -> str:
    return ERRNO_NAMES.get(err, f"E{err}")


def signal_name(sig: int) -> str:
    return SIGNAL_NAMES.get(sig, f"SIG{sig}")
