"""The syscall table's constants (fuzzer/prog/syscalls.py) against Python and the C headers.

Every integer constant the table defines, every name in its flag tables and
every syscall number is compared with what a C program compiled against the
system headers prints. Python's `mmap`, `errno` and `signal` modules give a
second, compiler-free opinion for the names they have.
"""

from __future__ import annotations

import errno
import mmap
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from fuzzer.prog import syscalls
from fuzzer.prog.syscalls import (
    BY_NR,
    ERRNO_NAMES,
    MADV_ADVICE,
    MAP_FLAGS,
    MAP_TYPES,
    MCL_FLAGS,
    MLOCK_FLAGS,
    MREMAP_FLAGS,
    PAGE,
    PROT_FLAGS,
    SIGNAL_NAMES,
    SYSCALLS,
    U64,
)

# Constants of the table that are not header macros of the same name, with
# the C expression to compare them against (None: nothing to compare).
C_EXPR: dict[str, str | None] = {
    "PAGE": "sysconf(_SC_PAGESIZE)",
    "U64": None,  # (1 << 64) - 1, checked below
    "TOUCH_NR": None,  # the executor's pseudo-call, not a syscall
    "SYS_GETPPID": "__NR_getppid",
    "SYS_EXIT_GROUP": "__NR_exit_group",
    # Newer than the build machine's headers (uapi since 6.11): checked by literal below.
    "MAP_DROPPABLE": None,
    "SYS_CAPSET": "__NR_capset",
    "SYS_PRLIMIT64": "__NR_prlimit64",
    "SYS_FORK": "__NR_fork",
    "SYS_MEMFD_CREATE": "__NR_memfd_create",
    "SYS_OPENAT": "__NR_openat",
    "AT_FDCWD": "AT_FDCWD",  # <fcntl.h>
    "O_RDWR": "O_RDWR",
    "O_TMPFILE": "O_TMPFILE",
    "SYS_PROCESS_MADVISE": "__NR_process_madvise",
    "UIO_MAXIOV": "UIO_MAXIOV",  # <sys/uio.h>
    "PMADV_IOVECS": None,  # the iovecs a program gives process_madvise: the format's own
    # Newer than the build machine's headers (6.10, 6.13): checked by literal below.
    "SYS_MSEAL": None,
    "MADV_GUARD_INSTALL": None,
    "MADV_GUARD_REMOVE": None,
    # The executor's own operation codes (wire format), not kernel constants.
    "OP_TOUCH": None,
    "OP_PRLIMIT_MEMLOCK": None,
    "OP_DROP_CAP_IPC_LOCK": None,
    "OP_EXIT": None,
    "OP_MEMFD_CREATE": None,
    "OP_TMPFILE": None,
    "RLIM_INFINITY": None,  # (rlim_t)-1, checked below
    "MAX_ERRNO": None,  # include/linux/err.h, not in the uapi headers: checked below
    "RWX": "PROT_READ | PROT_WRITE | PROT_EXEC",
    "SYS_PRCTL": "__NR_prctl",
    "PR_SET_THP_DISABLE": "PR_SET_THP_DISABLE",  # <sys/prctl.h>
    "PR_GET_THP_DISABLE": "PR_GET_THP_DISABLE",
    # Newer than the build machine's headers (uapi since 6.18): checked by literal below.
    "PR_THP_DISABLE_EXCEPT_ADVISED": None,
}
PREFIXES = ("PROT_", "MAP_", "MLOCK_", "MCL_", "MREMAP_", "MADV_", "E", "SIG", "SEGV_")

# glibc's <sys/mman.h> does not define PROT_SEM (only the kernel's
# <asm-generic/mman-common.h> does), so the probe also includes <linux/mman.h>;
# with both, every name in the table is defined and nothing is skipped.
HEADERS = ["sys/mman.h", "linux/mman.h", "sys/syscall.h", "errno.h", "signal.h", "stdio.h",
           "unistd.h", "sys/uio.h", "sys/prctl.h", "fcntl.h"]


def table_constants() -> dict[str, int]:
    """Every module-level integer constant of the syscall table."""
    return {
        name: value
        for name, value in vars(syscalls).items()
        if name.isupper() and isinstance(value, int) and not isinstance(value, bool)
    }


def expected_c_values() -> dict[str, tuple[str, int]]:
    """name -> (C expression, value the table says) for everything checkable in C."""
    out: dict[str, tuple[str, int]] = {}
    for name, value in table_constants().items():
        if name in C_EXPR:
            expr = C_EXPR[name]
            if expr is not None:
                out[name] = (expr, value)
        elif name.startswith(PREFIXES):
            out[name] = (name, value)
        else:
            raise AssertionError(f"syscalls.{name} has no C counterpart: add it to C_EXPR")
    for table in (PROT_FLAGS, MAP_TYPES, MAP_FLAGS, MLOCK_FLAGS, MCL_FLAGS, MREMAP_FLAGS,
                  MADV_ADVICE):
        for name, value in table.items():
            if C_EXPR.get(name, "") is None:
                continue
            out.setdefault(name, (name, value))
            assert out[name][1] == value, f"{name}: flag table says {value:#x}"
    for value, name in {**ERRNO_NAMES, **SIGNAL_NAMES}.items():
        out.setdefault(name, (name, value))
        assert out[name][1] == value, f"{name}: name table says {value}"
    for spec in SYSCALLS.values():
        if not spec.is_pseudo and spec.nr != syscalls.SYS_MSEAL:
            out[f"__NR_{spec.name}"] = (f"__NR_{spec.name}", spec.nr)
    return out


def _c_source(exprs: dict[str, str]) -> str:
    lines = ["#define _GNU_SOURCE", *(f"#include <{h}>" for h in HEADERS), "int main(void)", "{"]
    for name, expr in exprs.items():
        guard = expr if expr.isidentifier() else None
        if guard:
            lines.append(f"#ifdef {guard}")
        lines.append(f'\tprintf("{name} %lld\\n", (long long)({expr}));')
        if guard:
            lines += ["#else", f'\tprintf("{name} missing\\n");', "#endif"]
    lines += ["\treturn 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def header_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int | None]:
    """What the C headers say, by running a compiled probe: name -> value (None: missing)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    exprs = {name: expr for name, (expr, _) in expected_c_values().items()}
    work: Path = tmp_path_factory.mktemp("headers")
    (work / "probe.c").write_text(_c_source(exprs))
    build = subprocess.run([cc, "-Wall", "-Werror", "-o", str(work / "probe"),
                            str(work / "probe.c")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(work / "probe")], capture_output=True, text=True, check=True)
    values: dict[str, int | None] = {}
    for line in run.stdout.splitlines():
        name, value = line.split()
        values[name] = None if value == "missing" else int(value)
    assert set(values) == set(exprs)
    return values


@pytest.mark.parametrize("name", sorted(expected_c_values()))
def test_constant_matches_headers(name: str, header_values: dict[str, int | None]) -> None:
    expr, value = expected_c_values()[name]
    got = header_values[name]
    assert got is not None, f"{expr} is not defined by {', '.join(HEADERS)}"
    assert got == value, f"{name}: table {value:#x}, headers ({expr}) {got:#x}"


def test_every_table_constant_is_checked() -> None:
    """Adding a constant to the table without a way to check it fails here."""
    checked = expected_c_values()
    for name in table_constants():
        assert name in checked or C_EXPR.get(name, "") is None, name
    assert U64 == (1 << 64) - 1
    assert syscalls.MAP_DROPPABLE == 0x08  # include/uapi/linux/mman.h
    assert syscalls.SYS_MSEAL == 462  # arch/x86/entry/syscalls/syscall_64.tbl
    assert syscalls.PR_THP_DISABLE_EXCEPT_ADVISED == 1 << 1  # include/uapi/linux/prctl.h
    assert (syscalls.MADV_GUARD_INSTALL, syscalls.MADV_GUARD_REMOVE) == (102, 103)  # mman-common.h
    assert syscalls.RLIM_INFINITY == (1 << 64) - 1 == resource.RLIM_INFINITY % (1 << 64)


# Python's mmap module: the names it has that the table also has.
MMAP_NAMES = sorted(
    n for n in dir(mmap) if n.startswith(("PROT_", "MAP_")) and n in table_constants()
)


def test_mmap_module_overlap_is_not_empty() -> None:
    assert {"PROT_READ", "PROT_WRITE", "PROT_EXEC", "MAP_SHARED", "MAP_PRIVATE",
            "MAP_ANONYMOUS"} <= set(MMAP_NAMES)


@pytest.mark.parametrize("name", MMAP_NAMES)
def test_constant_matches_python_mmap(name: str) -> None:
    assert table_constants()[name] == getattr(mmap, name)


def test_page_size_matches_python() -> None:
    assert mmap.PAGESIZE == PAGE
    assert os.sysconf("SC_PAGESIZE") == PAGE


@pytest.mark.parametrize(("value", "name"), sorted(ERRNO_NAMES.items()))
def test_errno_matches_python(value: int, name: str) -> None:
    assert getattr(errno, name) == value
    assert syscalls.errno_name(value) == name


@pytest.mark.parametrize(("value", "name"), sorted(SIGNAL_NAMES.items()))
def test_signal_matches_python(value: int, name: str) -> None:
    assert getattr(signal, name) == value
    assert syscalls.signal_name(value) == name


def test_unknown_errno_and_signal_names() -> None:
    assert syscalls.errno_name(4095) == "E4095"
    assert syscalls.signal_name(64) == "SIG64"


def test_errno_range() -> None:
    """The kernel's error returns are -4095..-1 (IS_ERR_VALUE); anything else is a value."""
    assert syscalls.MAX_ERRNO == 4095
    assert [syscalls.is_errno(r) for r in (-4096, -4095, -1, 0, 1 << 44)] == [
        False, True, True, False, False]


def test_calls_that_return_an_address() -> None:
    assert {s.name for s in SYSCALLS.values() if s.returns_address} == {"mmap", "mremap"}


def test_syscall_table_shape() -> None:
    real = {s.nr: s.name for s in SYSCALLS.values() if not s.is_pseudo}
    assert real == {nr: s.name for nr, s in BY_NR.items()}
    assert all(name == spec.name for name, spec in SYSCALLS.items())
    pseudo = [s.name for s in SYSCALLS.values() if s.is_pseudo]
    assert {"touch", "prlimit_memlock", "drop_cap_ipc_lock", "exit", "memfd_create"} <= \
        set(pseudo)
    # Each pseudo-call is seen by the supervisor as one syscall no real call uses,
    # and its wire op is not a syscall number.
    assert {SYSCALLS[n].nr for n in pseudo}.isdisjoint(BY_NR)
    assert all(SYSCALLS[n].op is not None and SYSCALLS[n].op >= 1000 for n in pseudo)
    # The executor's checkpoint and exit must never be mistaken for a program call.
    assert {syscalls.SYS_GETPPID, syscalls.SYS_EXIT_GROUP}.isdisjoint(BY_NR)
    for spec in SYSCALLS.values():
        # six words a call on the wire; process_madvise packs its eight (wire.py)
        assert len(spec.args) <= (8 if spec.name == "process_madvise" else 6)
        for addr, length in spec.ranges:
            assert spec.args[addr][1] == syscalls.Kind.ADDR
            assert spec.args[length][1] == syscalls.Kind.LEN
