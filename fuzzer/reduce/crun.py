"""Building a C reproducer and running it on this host (`mmfuzz export --check`).

The binary is static, so a User-Mode Linux guest, whose root is the host's
file system, runs the same file (fuzzer/kernel/session.py, run_in_guest). It
is built in a temporary directory under the system's temporary directory
(visible in a guest: its scratch space is mounted elsewhere, init.sh) and
removed with it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fuzzer.reduce.finding import ExportError

CC_TIMEOUT = 120.0  # seconds to compile one reproducer


@contextmanager
def build_c(source: str) -> Iterator[Path]:
    """The reproducer built (`cc -Wall -static`), for the duration of the block."""
    folder = Path(tempfile.mkdtemp(prefix="mmfuzz-repro-"))
    try:
        (folder / "repro.c").write_text(source)
        try:
            built = subprocess.run(["cc", "-Wall", "-static", "-o", str(folder / "repro"),
                                    str(folder / "repro.c")], capture_output=True, text=True,
                                   timeout=CC_TIMEOUT, check=False)
        except FileNotFoundError:
            raise ExportError("no C compiler (cc) to build the reproducer with") from None
        except subprocess.TimeoutExpired:
            raise ExportError(f"cc did not build the reproducer in {CC_TIMEOUT:g} s") from None
        if built.returncode != 0:
            first = (built.stderr.strip().splitlines() or ["?"])[0]
            raise ExportError(f"cc could not build the reproducer: {first}")
        folder.chmod(0o755)  # a guest's processes run it too
        yield folder / "repro"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_c(binary: Path, timeout: float) -> tuple[int | None, str]:
    """Run it here: its exit status (None: still running after `timeout` s) and output."""
    try:
        proc = subprocess.run([str(binary)], capture_output=True, text=True, errors="replace",
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, ""
    return proc.returncode, proc.stdout + proc.stderr
