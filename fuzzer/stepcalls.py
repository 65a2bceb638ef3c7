"""The C module of a checked step's system calls (`stepcalls.c`): its build, and loading it.

`stepcalls.c` makes the calls every checked step makes (resume the process and
wait for its marker, read smaps, status and pagemap) with none of the Python
work around each one. It is a CPython extension, built beside its source by
`python -m fuzzer.executor` (`make setup`) with the C compiler and the headers
of the Python that runs it. Its callers (trace/ptrace_calls.py,
observe/proc.py) keep a Python twin of each function, used where the module is
not built, is older than its source, or `MMFUZZ_STEPCALLS=python` is set; the
twins are the readable version, and tests/test_stepcalls.py runs both.

It is loaded from its file, not through the import system: native.py keeps
compiled code out of fuzzer/'s directories when a worker must run the
interpreted model, and this module holds no model code to instrument.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sysconfig
from functools import cache
from pathlib import Path
from typing import Protocol, cast

from fuzzer.executor import ExecutorBuildError, compile_c
from fuzzer.snapshot.parse import VmasOf

SOURCE = Path(__file__).with_name("stepcalls.c")
NAME = "fuzzer._stepcalls"
LIBRARY = SOURCE.with_name("_stepcalls" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
ENV = "MMFUZZ_STEPCALLS"  # "python": the Python twins, even where the module is built
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"]


class StepCalls(Protocol):
    """What stepcalls.c defines (its comments say what each does)."""

    def read_file(self, fd: int, /) -> bytes: ...
    def read_line(self, fd: int, prefix: bytes, /) -> str: ...
    def read_words(self, fd: int, offset: int, count: int, /) -> tuple[int, ...]: ...
    smaps_vmas: VmasOf  # what snapshot/parse.py's SmapsParser.parse_bytes calls
    def cont_wait(self, pid: int, signo: int, offset: int, /) -> tuple[int, int]: ...


def why_not() -> str:
    """Why the Python twins are used ("" where the C module is)."""
    if os.environ.get(ENV) == "python":
        return f"{ENV}=python"
    if not LIBRARY.exists():
        return "not built (make setup)"
    if SOURCE.exists() and LIBRARY.stat().st_mtime < SOURCE.stat().st_mtime:
        return "older than stepcalls.c (make setup)"
    return ""


@cache
def load() -> StepCalls | None:
    """The C module, or None where the Python twins are used (`why_not`)."""
    if why_not():
        return None
    loader = importlib.machinery.ExtensionFileLoader(NAME, str(LIBRARY))
    spec = importlib.util.spec_from_file_location(NAME, LIBRARY, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return cast(StepCalls, module)


def describe() -> str:
    """Which step calls this process makes, for the benchmarks' output."""
    return "C (fuzzer/stepcalls.c)" if load() else f"Python ({why_not()})"


def build() -> Path:
    """Compile the module beside its source (renamed into place: a running process keeps
    the file it mapped). ExecutorBuildError, as for the executor, if it cannot be."""
    if not SOURCE.exists():
        raise ExecutorBuildError(f"no {SOURCE} (an installed copy without the C source)")
    include = sysconfig.get_paths()["include"]
    if not Path(include, "Python.h").exists():
        raise ExecutorBuildError(f"no Python.h in {include} (install python3-dev)")
    tmp = LIBRARY.with_name(f"{LIBRARY.name}.{os.getpid()}.tmp")
    compile_c([*CFLAGS, f"-I{include}", "-o", str(tmp), str(SOURCE)], SOURCE.name)
    tmp.replace(LIBRARY)
    return LIBRARY
