"""The program in syzkaller's text format, for people who replay findings with syz-execprog.

Calls become syzkaller calls with numeric arguments and VMA pointers,
`mmap(&(0x7f0000000000/0x4000)=nil, 0x4000, 0x3, 0x32, 0xffffffffffffffff, 0x0)`.
Arena offsets are placed in syzkaller's classic data area at 0x7f0000000000
(mmfuzz's own arena is at ARENA_BASE; the header says so). A touch has no
syscall: it is kept as a comment line; the privilege pseudo-calls become the
prlimit64 and capset they stand for, memfd_create gets its name from scratch
memory. Descriptors stay the numbers mmfuzz's executor gives (0 first).
"""

from __future__ import annotations

from fuzzer.prog import ARENA_BASE, Call, Program, format_call
from fuzzer.prog.program import WRAP_MIN, page_up
from fuzzer.prog.syscalls import O_RDWR, O_TMPFILE, PAGE, U64, Kind
from fuzzer.reduce.csource import TMPFILE_DIR

SYZ_BASE = 0x7F00_0000_0000  # where these lines put arena page 0
SCRATCH = SYZ_BASE + 0x100_0000  # a free spot past the 64-page arena, for structs
RLIMIT_MEMLOCK = 8
CAP_V3 = 0x2008_0522
# Root's capability sets without CAP_IPC_LOCK (14), as two 32-bit words; assumes
# the full set of a 6.x kernel (CAP_LAST_CAP 40).
CAPS_LOW, CAPS_HIGH = 0xFFFF_FFFF & ~(1 << 14), 0x1FF


def _hex(value: int) -> str:
    return f"{value & U64:#x}"


def _vma(offset: int, length: int) -> str:
    """A syzkaller VMA pointer: the address and the size of the range it names."""
    size = page_up(length) if 0 < length < WRAP_MIN else PAGE
    return f"&({SYZ_BASE + offset:#x}/{size:#x})=nil"


def syz_call(call: Call) -> str:
    """One call as a syzkaller program line (a comment for a touch)."""
    spec = call.syscall
    match call.name:
        case "touch":
            return f"# {format_call(call)}: a page access, no syscall"
        case "prlimit_memlock":
            limit = _hex(call.args[0])
            return (f"prlimit64(0x0, {RLIMIT_MEMLOCK:#x}, &({SCRATCH:#x})={{{limit}, {limit}}}, "
                    "0x0)")
        case "drop_cap_ipc_lock":
            data = ", ".join(_hex(v) for v in (CAPS_LOW, CAPS_LOW, 0, CAPS_HIGH, CAPS_HIGH, 0))
            return (f"capset(&({SCRATCH:#x})={{{CAP_V3:#x}, 0x0}}, "
                    f"&({SCRATCH + 8:#x})={{{data}}})")
        case "memfd_create":
            # mmfuzz numbers fds from 0 (its executor closes all first); syz-executor
            # does not, so ftruncate/close/mmap fds may need renumbering
            return f"memfd_create(&({SCRATCH:#x})='mmfuzz\\x00', 0x0)"
        case "tmpfile":  # open(TMPFILE_DIR, O_TMPFILE | O_RDWR, 0600)
            return (f"openat(0xffffffffffffff9c, &({SCRATCH:#x})='{TMPFILE_DIR}\\x00', "
                    f"{O_TMPFILE | O_RDWR:#x}, 0x180)")
        case "process_madvise":
            return _process_madvise(call)
    lengths: dict[int, int] = {}
    for ai, li in spec.ranges:  # mremap: old with old_len, new with new_len
        lengths.setdefault(ai, call.args[li])
    args = []
    for i, ((_, kind), value) in enumerate(zip(spec.args, call.args, strict=True)):
        if kind == Kind.ADDR:
            args.append(_vma(value, lengths.get(i, PAGE)))
        else:
            args.append(_hex(value))
    return f"{call.name}({', '.join(args)})"


def _process_madvise(call: Call) -> str:
    """process_madvise on the caller itself (a syzkaller program has one process): its
    pidfd from getpid and pidfd_open, the two iovecs in scratch memory, then close.
    (A vlen past two reads past them, where syz-executor's scratch memory is zeros.)"""
    _, base0, len0, base1, len1, vlen, advice, flags = call.args
    iov = ", ".join(f"{{{_vma(b, n)}, {_hex(n)}}}" for b, n in ((base0, len0), (base1, len1)))
    return "\n".join([
        "r0 = getpid()",
        "r1 = pidfd_open(r0, 0x0)",
        f"process_madvise(r1, &({SCRATCH:#x})=[{iov}], {_hex(vlen)}, {_hex(advice)}, "
        f"{_hex(flags)})",
        "close(r1)",
    ])


def syz_program(program: Program, header: list[str] | None = None) -> str:
    lines = [f"# {line}".rstrip() for line in header or []]
    lines += [
        f"# syzkaller format. Arena page 0 is placed at {SYZ_BASE:#x} here; mmfuzz's arena",
        f"# is at {ARENA_BASE:#x}, and syzkaller's own data area differs between versions",
        "# (0x20000000, 0x200000000000): shift the addresses if your syz-execprog maps",
        "# its data elsewhere. Touches have no syscall and appear as comments.",
    ]
    lines += [syz_call(c) for c in program.calls]
    return "\n".join(lines) + "\n"


__all__ = ["SYZ_BASE", "syz_call", "syz_program"]
