"""Finding the processes a test started, by their parent: never by name alone, which
would match another campaign's processes on a shared machine."""

from __future__ import annotations

from pathlib import Path


def children(parent: int, module: str) -> list[int]:
    """The pids of the processes running `module` whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if module.encode() in cmdline and f"\nPPid:\t{parent}\n" in status:
            found.append(int(entry.name))
    return found
