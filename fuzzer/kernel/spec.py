"""`--kernel`: which kernel a command runs its programs on.

`host` is the running kernel; `uml:PATH` a User-Mode Linux binary (`linux`
from `make ARCH=um`, or Debian's /usr/bin/linux). A PATH that is missing or
not executable is a KernelError naming it, one line. Either may end in
`#NAME`, the user's name for the build (store/identity.py): `uml:./linux#patched`.
`binary_hash` is what tells two UML binaries of one release apart.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from fuzzer.store.identity import BINARY_HEX

GUEST_MEM = 512  # MiB of memory a guest gets unless told otherwise (--guest-mem)


class KernelError(RuntimeError):
    """A kernel under test could not be used (bad --kernel, a guest that failed); one line."""


@dataclass(frozen=True)
class Kernel:
    uml: Path | None = None  # None: the host kernel
    mem_mb: int = GUEST_MEM  # guest memory (mem=), for UML
    name: str | None = None  # the user's name for the build (`#NAME`)

    @property
    def is_host(self) -> bool:
        return self.uml is None

    def __str__(self) -> str:
        return "host" if self.uml is None else f"uml:{self.uml}"

    def binary(self) -> str | None:
        """The UML binary's hash (store/identity.py); None on the host."""
        return None if self.uml is None else binary_hash(self.uml)


HOST = Kernel()


def binary_hash(path: Path) -> str:
    """The first BINARY_HEX hex digits of the file's SHA-256 (OSError if unreadable)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:BINARY_HEX]


def parse_kernel(text: str, mem_mb: int = GUEST_MEM) -> Kernel:
    """`host` or `uml:PATH`, each with an optional `#NAME`, as a Kernel; KernelError if it
    names nothing usable."""
    text = text.strip()
    text, hashmark, name = text.partition("#")
    if hashmark and (not name.strip() or any(c.isspace() for c in name.strip())):
        raise KernelError(f"--kernel {text}#{name}: a build's name is one word after '#'")
    label = name.strip() or None
    if text == "host":
        return Kernel(name=label) if label else HOST
    kind, sep, rest = text.partition(":")
    if kind != "uml" or not sep or not rest:
        raise KernelError(f"--kernel {text!r}: expected 'host' or 'uml:PATH'")
    path = Path(rest).expanduser()
    if not path.exists():
        raise KernelError(f"--kernel {text}: {path}: no such file (build one with "
                          "`make ARCH=um linux`, or install user-mode-linux for /usr/bin/linux)")
    if not path.is_file() or not path.stat().st_mode & 0o111 or not os.access(path, os.X_OK):
        raise KernelError(f"--kernel {text}: {path}: not an executable file")
    if mem_mb < 64:
        raise KernelError(f"--guest-mem {mem_mb}: a guest needs at least 64 MiB")
    return Kernel(path.absolute(), mem_mb, label)
