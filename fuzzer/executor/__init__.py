"""The child side: builds and locates the C executor (`executor.c` beside this file).

The binary is static, so the child's address space is small and known: a few
VMAs of its own and the arena. It is built on first use (or by `make`), and
rebuilt whenever the source is newer than the binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("executor.c")
BINARY_NAME = "mmfuzz-executor"
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-static"]


class ExecutorBuildError(RuntimeError):
    """The executor could not be compiled (no C compiler, no static libc, ...)."""


def _candidates() -> list[Path]:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mmfuzz"
    return [SOURCE.with_name(BINARY_NAME), cache / BINARY_NAME]


def executor_path() -> Path:
    """Path of an up-to-date executor binary, building it if needed."""
    src_mtime = SOURCE.stat().st_mtime
    for path in _candidates():
        if path.exists() and path.stat().st_mtime >= src_mtime:
            return path
    return build()


def build() -> Path:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise ExecutorBuildError("no C compiler found (install gcc, or set CC)")
    errors = []
    for path in _candidates():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            proc = subprocess.run(
                [cc, *CFLAGS, "-o", str(tmp), str(SOURCE)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                first = (proc.stderr.strip().splitlines() or ["unknown error"])[0]
                raise ExecutorBuildError(f"building the executor failed: {first}")
            tmp.replace(path)
            return path
        except PermissionError as e:
            errors.append(str(e))
    raise ExecutorBuildError("cannot write the executor binary: " + "; ".join(errors))
