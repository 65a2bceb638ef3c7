"""The child side: builds and locates the C executor (`executor.c` beside this file).

The binary is static, so the child's address space is small and known: a few
VMAs of its own and the arena. It is built on first use (or by `make`), and
rebuilt whenever the source is newer than the binary. `ceiling.c`, the C-only
ceiling `mmfuzz bench throughput` measures the product against, is built the
same way (`ceiling_path()`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("executor.c")
BINARY_NAME = "mmfuzz-executor"
CEILING_SOURCE = Path(__file__).with_name("ceiling.c")
CEILING_NAME = "mmfuzz-ceiling"
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-static"]


class ExecutorBuildError(RuntimeError):
    """A C part could not be compiled: the executor, the ceiling or stepcalls.c (no C
    compiler, no static libc, no Python headers, ...)."""


def _candidates(name: str = BINARY_NAME) -> list[Path]:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mmfuzz"
    return [SOURCE.with_name(name), cache / name]


def executor_path() -> Path:
    """Path of an up-to-date executor binary, building it if needed."""
    return _up_to_date(SOURCE, BINARY_NAME)


def ceiling_path() -> Path:
    """Path of an up-to-date ceiling binary (ceiling.c), building it if needed."""
    return _up_to_date(CEILING_SOURCE, CEILING_NAME)


WIRE_HEADER = SOURCE.with_name("wire.h")  # included by both sources


def _up_to_date(source: Path, name: str) -> Path:
    src_mtime = max(source.stat().st_mtime, WIRE_HEADER.stat().st_mtime)
    for path in _candidates(name):
        if path.exists() and path.stat().st_mtime >= src_mtime:
            return path
    return build(source, name)


def compile_c(args: list[str], what: str) -> None:
    """Run the C compiler ($CC, cc or gcc) with `args`; ExecutorBuildError with the first
    line of its errors if it fails."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise ExecutorBuildError("no C compiler found (install gcc, or set CC)")
    try:
        proc = subprocess.run([cc, *args], capture_output=True, text=True)
    except OSError as e:
        raise ExecutorBuildError(f"cannot run {cc}: {e.strerror}") from None
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["unknown error"])[0]
        raise ExecutorBuildError(f"building {what} failed: {first}")


def build(source: Path = SOURCE, name: str = BINARY_NAME) -> Path:
    """Compile `source` (static, -O2, warnings as errors) into the first writable place."""
    errors = []
    what = "the executor" if name == BINARY_NAME else name
    for path in _candidates(name):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            compile_c([*CFLAGS, "-o", str(tmp), str(source)], what)
            tmp.replace(path)
            return path
        except PermissionError as e:
            errors.append(str(e))
    raise ExecutorBuildError(f"cannot write {what}: " + "; ".join(errors))
